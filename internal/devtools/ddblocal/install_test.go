package ddblocal

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseJavaVersion(t *testing.T) {
	tests := []struct {
		out  string
		want int
	}{
		{"openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)", 17},
		{"java version \"1.8.0_392\"\nJava(TM) SE Runtime Environment", 8},
		{"Picked up JAVA_TOOL_OPTIONS: -Xmx1g\nopenjdk version \"21\" 2023-09-19", 21},
		{"openjdk version \"11.0.22\" 2024-01-16", 11},
	}
	for _, tt := range tests {
		got, err := ParseJavaVersion(tt.out)
		if err != nil || got != tt.want {
			t.Errorf("ParseJavaVersion(%q) = %d, %v; want %d", tt.out, got, err, tt.want)
		}
	}
	if _, err := ParseJavaVersion("command not found"); err == nil {
		t.Error("ParseJavaVersion(garbage) succeeded")
	}
}

func TestFindJarTakesNewest(t *testing.T) {
	dir := t.TempDir()
	if _, err := FindJar(dir); err == nil {
		t.Fatal("FindJar(empty dir) succeeded")
	}
	for _, d := range []string{"dynamodb_local_2025-06-26", "dynamodb_local_2026-05-28"} {
		p := filepath.Join(dir, "node_modules", Package, "lib", d)
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "DynamoDBLocal.jar"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := FindJar(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(dir, "node_modules", Package, "lib", "dynamodb_local_2026-05-28"); got != want {
		t.Errorf("FindJar() = %s, want %s", got, want)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	if got := modulePath(b); got != "github.com/sebelas/sebelas" {
		t.Errorf("module at %s = %q", root, got)
	}
	if wd, _ := os.Getwd(); !strings.HasPrefix(wd, root) {
		t.Errorf("RepoRoot() = %s is not above %s", root, wd)
	}
}

func TestModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"module github.com/sebelas/sebelas\n\ngo 1.26\n": "github.com/sebelas/sebelas",
		"// comment\nmodule \"example.com/x\"\n":         "example.com/x",
		"go 1.26\n":                                      "",
	} {
		if got := modulePath([]byte(in)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLockFileSerialises(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	var waited bool
	if _, err := lockFile(ctx, path, func(string, ...any) { waited = true }); err == nil {
		t.Fatal("second lockFile succeeded while the first holds the lock")
	}
	if !waited {
		t.Error("second lockFile did not say it was waiting")
	}
	unlock()
	unlock2, err := lockFile(context.Background(), path, nil)
	if err != nil {
		t.Fatalf("lockFile after unlock: %v", err)
	}
	unlock2()
}

// With no java, npm or apt-get on PATH, Install must say what is missing
// and what to do, not hang or fail obscurely.
func TestInstallExplainsMissingTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := Install(context.Background(), t.TempDir(), nil)
	if err == nil {
		t.Fatal("Install succeeded without java and npm")
	}
	for _, want := range []string{"java is not on PATH", "npm is not on PATH", "openjdk-17-jre-headless", "nodejs npm"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Install error %q does not mention %q", err, want)
		}
	}
}

func TestRingBuffer(t *testing.T) {
	r := newRingBuffer(8)
	r.Write([]byte("abc"))
	r.Write([]byte("defgh"))
	if got := r.String(); got != "abcdefgh" {
		t.Errorf("got %q", got)
	}
	r.Write([]byte("ij"))
	if got := r.String(); got != "cdefghij" {
		t.Errorf("got %q", got)
	}
	r.Write([]byte("0123456789"))
	if got := r.String(); got != "23456789" {
		t.Errorf("got %q", got)
	}
}
