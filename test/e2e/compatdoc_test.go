package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestCompatibilityDocNamesRealTests keeps docs/compatibility.md honest:
// every test it cites as proof must exist somewhere in the repository.
func TestCompatibilityDocNamesRealTests(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "compatibility.md"))
	if err != nil {
		t.Fatal(err)
	}
	cited := regexp.MustCompile(`\b(?:Test|Fuzz)[A-Z][A-Za-z0-9]*`).FindAllString(string(doc), -1)
	if len(cited) < 50 {
		t.Fatalf("docs/compatibility.md cites %d tests; expected a row-by-row table", len(cited))
	}
	var sources strings.Builder
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "bin") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sources.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := sources.String()
	for _, name := range cited {
		if !strings.Contains(all, "func "+name+"(") {
			t.Errorf("docs/compatibility.md cites %s, which no test file defines", name)
		}
	}
}
