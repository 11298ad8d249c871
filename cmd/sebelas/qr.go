package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sebelas/sebelas/internal/fault"
	"github.com/sebelas/sebelas/internal/money"
	"github.com/sebelas/sebelas/internal/qr"
)

// qrPayloadBytesMax bounds what qr parse reads from stdin: a payload is at
// most 512 bytes, the rest is a mistake.
const qrPayloadBytesMax = 4096

func runQRMake(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("qr make", "--market ID --merchant ID1020021181745 --name 'WARUNG' --city JAKARTA [--amount 25000 --dynamic --reference INV1 --expires-in 15m] [--tip prompt|fixed:5.00|percent:1.5]")
	var s qr.Spec
	fs.StringVar(&s.Market, "market", "", "market: ID PH MY TH BD PK IN (required)")
	fs.StringVar(&s.MerchantRef, "merchant", "", "the merchant's id in the market's scheme: QRIS NMID, PromptPay biller id, UPI id, ... (required)")
	fs.StringVar(&s.Acquirer, "acquirer", "", "acquirer id, for the schemes that name one (QR Ph, DuitNow, Bangla QR, Raast)")
	fs.StringVar(&s.MCC, "mcc", "5411", "merchant category code (ISO 18245)")
	fs.StringVar(&s.Name, "name", "", "merchant name, at most 25 characters (required)")
	fs.StringVar(&s.City, "city", "", "merchant city, at most 15 characters (required)")
	fs.StringVar(&s.Postal, "postal", "", "postal code")
	amount := fs.String("amount", "", "amount in major units (the payer types it when empty)")
	tip := fs.String("tip", "", "prompt (payer may tip), fixed:<amount> or percent:<0.01..99.99> (convenience fee)")
	fs.BoolVar(&s.Dynamic, "dynamic", false, "a one-time code: needs --amount, --reference and --expires-in")
	fs.StringVar(&s.Reference, "reference", "", "reference of the payment (dynamic codes)")
	fs.StringVar(&s.Terminal, "terminal", "", "terminal label")
	expiresIn := fs.Duration("expires-in", 0, "validity of the code from now, e.g. 15m")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if s.Market == "" || s.MerchantRef == "" || s.Name == "" || s.City == "" {
		fs.Usage()
		return errors.New("qr make: --market, --merchant, --name and --city are required")
	}
	scheme, ok := qr.SchemeOf(s.Market)
	if !ok {
		return fmt.Errorf("qr make: market %q is not one of ID PH MY TH BD PK IN", s.Market)
	}
	if *amount != "" {
		a, err := money.Parse(*amount, scheme.Currency)
		if err != nil {
			return fmt.Errorf("qr make: --amount: %w", err)
		}
		s.AmountMinor = a.Minor
	}
	var err error
	if s.Tip, err = parseTipFlag(*tip, scheme.Currency); err != nil {
		return err
	}
	if *expiresIn > 0 {
		s.ExpiresAt = time.Now().Add(*expiresIn).Truncate(time.Second)
	}
	payload, err := qr.Make(s)
	if err != nil {
		return fmt.Errorf("qr make: %s: %w", fault.ReasonOf(err), err)
	}
	fmt.Fprintln(stdout, payload)
	return nil
}

func parseTipFlag(v string, cur money.Currency) (qr.Tip, error) {
	kind, value, _ := strings.Cut(v, ":")
	switch kind {
	case "":
		return qr.Tip{}, nil
	case "prompt":
		return qr.Tip{Kind: qr.TipPrompt}, nil
	case "fixed":
		a, err := money.Parse(value, cur)
		if err != nil {
			return qr.Tip{}, fmt.Errorf("qr make: --tip fixed: %w", err)
		}
		return qr.Tip{Kind: qr.TipFixed, FixedMinor: a.Minor}, nil
	case "percent":
		// Basis points through money.Parse with a two-digit currency.
		a, err := money.Parse(value, money.PHP)
		if err != nil {
			return qr.Tip{}, fmt.Errorf("qr make: --tip percent: %w", err)
		}
		return qr.Tip{Kind: qr.TipPercent, BasisPts: a.Minor}, nil
	}
	return qr.Tip{}, fmt.Errorf("qr make: --tip %q is not prompt, fixed:<amount> or percent:<rate>", v)
}

// qrParsed is what qr parse prints: the code as the app would show it.
type qrParsed struct {
	Scheme       string `json:"scheme"`
	Approximated bool   `json:"layout_approximated,omitempty"`
	Market       string `json:"market"`
	Currency     string `json:"currency"`
	MerchantID   string `json:"merchant_id"`
	MerchantRef  string `json:"merchant_ref"`
	Acquirer     string `json:"acquirer,omitempty"`
	Name         string `json:"name"`
	City         string `json:"city"`
	MCC          string `json:"mcc"`
	Dynamic      bool   `json:"dynamic"`
	Amount       int64  `json:"amount,omitempty"` // minor units
	Tip          string `json:"tip,omitempty"`
	FeeFixed     int64  `json:"fee_fixed,omitempty"`
	FeeBasisPts  int64  `json:"fee_basis_points,omitempty"`
	Reference    string `json:"reference,omitempty"`
	Terminal     string `json:"terminal,omitempty"`
	ExpiresAt    string `json:"expires_at,omitempty"`
}

// qrRefusal is what qr parse prints for a payload it refuses.
type qrRefusal struct {
	Reason  string `json:"reason"`
	Message string `json:"message"` // what the app shows
	Detail  string `json:"detail"`
}

func runQRParse(_ context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("qr parse", "[PAYLOAD]   (or the payload on stdin)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	payload := fs.Arg(0)
	if fs.NArg() == 0 {
		line, err := bufio.NewReader(io.LimitReader(os.Stdin, qrPayloadBytesMax)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		payload = strings.TrimRight(line, "\r\n")
	}
	c, err := qr.Parse(payload, time.Now())
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err != nil {
		reason := fault.ReasonOf(err)
		_ = enc.Encode(qrRefusal{Reason: reason, Message: qr.Message(reason), Detail: err.Error()})
		return fmt.Errorf("qr parse: refused: %s", reason)
	}
	out := qrParsed{Scheme: c.Scheme.Name, Approximated: c.Scheme.Approximated, Market: c.Market.Code, Currency: string(c.Currency),
		MerchantID: c.MerchantID(), MerchantRef: c.MerchantRef, Acquirer: c.Acquirer, Name: c.Name, City: c.City, MCC: c.MCC,
		Dynamic: c.Dynamic, Amount: c.AmountMinor, FeeFixed: c.Tip.FixedMinor, FeeBasisPts: c.Tip.BasisPts,
		Reference: c.Reference, Terminal: c.Terminal}
	out.Tip = [...]string{"", "prompt", "fixed", "percent"}[c.Tip.Kind]
	if !c.ExpiresAt.IsZero() {
		out.ExpiresAt = c.ExpiresAt.Format(time.RFC3339)
	}
	return enc.Encode(out)
}
