package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/sebelas/sebelas/internal/devtools/ddblocal"
)

// testEndpointEnv is ddbtest.EnvEndpoint, spelled out so that the CLI does
// not link the testing package.
const testEndpointEnv = "SEBELAS_TEST_DYNAMODB_ENDPOINT"

// runDynamoDBLocal runs one DynamoDB Local. With --exec it runs a command
// with SEBELAS_TEST_DYNAMODB_ENDPOINT and AWS_ENDPOINT_URL_DYNAMODB pointing
// at it and stops when the command ends, exiting with the command's status:
// `go tool task test` runs the whole suite this way so that every test
// package shares one JVM (each test still gets its own table) instead of
// starting one per package.
func runDynamoDBLocal(ctx context.Context, args []string, stdout io.Writer) error {
	fs := newFlags("dynamodb-local", "[--port 8000] [--exec -- command args...]")
	port := fs.Int("port", 0, "port to listen on (0: a free port)")
	execCmd := fs.Bool("exec", false, "run the command after -- against it, then stop")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *execCmd && fs.NArg() == 0 {
		return errors.New("--exec needs a command after --")
	}
	inst, err := ddblocal.Start(ctx, ddblocal.Options{Port: *port, InMemory: true, SharedDB: true,
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }})
	if err != nil {
		return err
	}
	defer func() { _ = inst.Stop() }()
	if !*execCmd {
		fmt.Fprintf(stdout, "DynamoDB Local at %s (in memory); Ctrl-C to stop\n", inst.Endpoint)
		<-ctx.Done()
		return nil
	}
	cmd := exec.CommandContext(ctx, fs.Arg(0), fs.Args()[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, stdout, os.Stderr
	cmd.Env = append(os.Environ(),
		testEndpointEnv+"="+inst.Endpoint,
		"AWS_ENDPOINT_URL_DYNAMODB="+inst.Endpoint)
	err = cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		_ = inst.Stop()
		os.Exit(exit.ExitCode())
	}
	return err
}
