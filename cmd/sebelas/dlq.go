package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sebelas/sebelas/internal/deadletter"
	"github.com/sebelas/sebelas/internal/table"
)

// dlqReasonBytesMax bounds the failure shown per letter in a listing.
const dlqReasonBytesMax = 60

func openDLQ(ctx context.Context) (*deadletter.Store, error) {
	tc, err := table.ConfigFromEnv(os.Getenv)
	if err != nil {
		return nil, err
	}
	db, err := dynamoClient(ctx, tc)
	if err != nil {
		return nil, err
	}
	return &deadletter.Store{DB: db, Table: tc.Table}, nil
}

// dlqFilterFlags are the selection flags of list and replay --all.
type dlqFilterFlags struct {
	day, from, to, typ *string
	all, transient     *bool
}

func addDLQFilterFlags(fs *flag.FlagSet) dlqFilterFlags {
	return dlqFilterFlags{
		day:       fs.String("day", "", "one UTC day YYYY-MM-DD (default: yesterday and today)"),
		from:      fs.String("from", "", "first UTC day of a range (with --to)"),
		to:        fs.String("to", "", "last UTC day of a range"),
		typ:       fs.String("type", "", "only this event type, e.g. dev.sebelas.charge.requested"),
		all:       fs.Bool("resolved", false, "include letters already resolved by a replay"),
		transient: fs.Bool("transient", false, "leave out code 400 (the consumer said the event can never succeed)"),
	}
}

func (f dlqFilterFlags) filter(now time.Time) (deadletter.Filter, error) {
	out := deadletter.Filter{Type: *f.typ, Unresolved: !*f.all, Transient: *f.transient}
	parse := func(name, v string) (time.Time, error) {
		t, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return t, fmt.Errorf("--%s %.20q: want YYYY-MM-DD", name, v)
		}
		return t, nil
	}
	var err error
	switch {
	case *f.day != "" && (*f.from != "" || *f.to != ""):
		return out, errors.New("--day or --from/--to, not both")
	case *f.day != "":
		out.From, err = parse("day", *f.day)
		out.To = out.From
	case *f.from != "" || *f.to != "":
		if out.From, err = parse("from", *f.from); err != nil {
			return out, err
		}
		out.To, err = parse("to", *f.to)
	default:
		out.To = now.UTC()
		out.From = out.To.Add(-24 * time.Hour)
	}
	return out, err
}

func runDLQList(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dlq list", "[--day D | --from D --to D] [--type T] [--resolved] [--transient]")
	ff := addDLQFilterFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	f, err := ff.filter(time.Now())
	if err != nil {
		return err
	}
	s, err := openDLQ(ctx)
	if err != nil {
		return err
	}
	letters, err := s.List(ctx, f)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REF\tRECEIVED\tTYPE\tSUBJECT\tCODE\tSTATE\tFAILURE")
	for _, l := range letters {
		state := "unresolved"
		if l.Resolved() {
			state = "resolved"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", l.Ref(), l.ReceivedAt, l.Type, l.Subject, l.ErrorCode, state, failure(l.ErrorData, dlqReasonBytesMax))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d dead letters (%s..%s)\n", len(letters), f.From.Format(time.DateOnly), f.To.Format(time.DateOnly))
	return nil
}

func runDLQShow(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dlq show", "REF")
	refs, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if len(refs) != 1 {
		fs.Usage()
		return errors.New("one REF (as `dlq list` prints it)")
	}
	s, err := openDLQ(ctx)
	if err != nil {
		return err
	}
	l, err := s.Find(ctx, refs[0])
	if err != nil {
		return err
	}
	ev, err := l.CloudEvent()
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "ref:          %s\nreceived:     %s\nfailed at:    %s\ncode:         %s\nfailure:      %s\n",
		l.Ref(), l.ReceivedAt, l.ErrorDest, l.ErrorCode, failure(l.ErrorData, 2<<10))
	if l.Resolved() {
		fmt.Fprintf(stdout, "resolved:     %s (%s)\n", l.ResolvedAt, l.ResolvedNote)
	} else {
		fmt.Fprintln(stdout, "resolved:     no")
	}
	if len(l.Event) == 0 {
		fmt.Fprintln(stdout, "note:         stored before whole events were kept: extensions (a signature) are lost")
	}
	b, err := json.MarshalIndent(ev, "", "  ")
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "event:\n%s\n", b)
	return nil
}

func runDLQReplay(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dlq replay", "(REF... | --all [filters]) --broker URL [--dry-run]")
	ff := addDLQFilterFlags(fs)
	all := fs.Bool("all", false, "replay every letter the filters select (default: unresolved, yesterday and today)")
	broker := fs.String("broker", firstNonEmpty(os.Getenv("SEBELAS_BROKER_URL"), os.Getenv("K_SINK")), "the Broker ingress URL (default $SEBELAS_BROKER_URL, else $K_SINK)")
	dry := fs.Bool("dry-run", false, "say what would be replayed, post nothing")
	note := fs.String("note", "dlq replay", "recorded on each resolved letter")
	refs, err := parseInterleaved(fs, args)
	if err != nil {
		return err
	}
	if *all == (len(refs) > 0) {
		fs.Usage()
		return errors.New("name REFs or --all, one of the two")
	}
	if *broker == "" && !*dry {
		return errors.New("--broker is required (or $SEBELAS_BROKER_URL)")
	}
	s, err := openDLQ(ctx)
	if err != nil {
		return err
	}
	var letters []deadletter.Letter
	if *all {
		f, err := ff.filter(time.Now())
		if err != nil {
			return err
		}
		if letters, err = s.List(ctx, f); err != nil {
			return err
		}
	}
	for _, ref := range refs {
		l, err := s.Find(ctx, ref)
		if err != nil {
			return err
		}
		letters = append(letters, l)
	}
	var pub deadletter.Publisher
	if !*dry {
		if pub, err = deadletter.NewHTTPPublisher(*broker); err != nil {
			return err
		}
	}
	var failed, posted int
	for _, l := range letters {
		if *dry {
			fmt.Fprintf(stdout, "would replay %s %s %s\n", l.Ref(), l.Type, l.Subject)
			continue
		}
		r, err := s.Replay(ctx, pub, l, *note)
		if err != nil {
			failed++
			fmt.Fprintf(stdout, "FAILED  %s %s %s: %v\n", l.Ref(), l.Type, l.Subject, err)
			continue
		}
		if r.Posted {
			posted++
		}
		fmt.Fprintf(stdout, "%-7s %s %s %s: %s\n", map[bool]string{true: "posted", false: "skipped"}[r.Posted], l.Ref(), l.Type, l.Subject, r.Resolution)
	}
	fmt.Fprintf(stdout, "%d letters, %d posted to the Broker, %d failed\n", len(letters), posted, failed)
	if failed > 0 {
		return fmt.Errorf("%d replays failed (nothing was marked for them; run again)", failed)
	}
	return nil
}

// parseInterleaved parses flags that may come after the positional
// arguments too ("replay REF --broker URL") and returns the positionals.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

// failure is a letter's knativeerrordata (the base64 of the failed
// answer's body, or a dispatch error), decoded and cut to n bytes.
func failure(errorData string, n int) string {
	b, err := base64.StdEncoding.DecodeString(errorData)
	if err != nil {
		// Knative cuts the base64 at 1024 characters; decode what is whole.
		b, _ = base64.StdEncoding.DecodeString(errorData[:len(errorData)/4*4])
	}
	s := strings.Join(strings.Fields(string(b)), " ")
	if len(s) > n {
		s = s[:n] + "..."
	}
	if s == "" {
		return "-"
	}
	return s
}
