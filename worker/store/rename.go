package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/integritee-go/integritee/internal/atomicfile"
)

// A store is two files, and no rename moves two files at once. Rename
// first writes a note of the move beside the main file (movingPath), then
// renames both files and removes the note; the next Rename or Open at the
// old path finishes a move a crash interrupted. Without the note a crash
// between the two renames would leave a new, empty main file to be created
// next to the old state file, which Open refuses as another store's, and
// the moved main file without its state.

// movingPath is the note of an unfinished move of the store at path.
func movingPath(path string) string { return path + ".moving" }

// Rename moves a closed store's files to another name in the same
// directory: the main file and its state file. A crash part-way is
// finished by the next Rename or Open of from.
func Rename(from, to string) error {
	if filepath.Dir(from) != filepath.Dir(to) || filepath.Base(to) == filepath.Base(from) {
		return fmt.Errorf("move store %s to %s: only to another name in the same directory", from, to)
	}
	if err := finishMove(from); err != nil {
		return err
	}
	if _, err := os.Stat(from); err != nil {
		return fmt.Errorf("move store: %w", err)
	}
	for _, p := range []string{to, StatePath(to)} {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("move store %s: %s exists", from, p)
		}
	}
	if err := atomicfile.WriteFile(movingPath(from), []byte(filepath.Base(to)), 0o600); err != nil {
		return fmt.Errorf("move store %s: %w", from, err)
	}
	return finishMove(from)
}

// finishMove completes the move the note beside the main file at from
// describes, if there is one: each file still at its old name is renamed,
// then the directory synced and the note removed.
func finishMove(from string) error {
	note := movingPath(from)
	b, err := os.ReadFile(note)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("finish moving store %s: %w", from, err)
	}
	name := string(b)
	if name == "" || name == "." || name == ".." || name != filepath.Base(name) || name == filepath.Base(from) || strings.HasPrefix(name, "state-") {
		return fmt.Errorf("finish moving store %s: %s names no file beside it (%q): %w", from, note, b, ErrCorrupt)
	}
	to := filepath.Join(filepath.Dir(from), name)
	for _, m := range [][2]string{{from, to}, {StatePath(from), StatePath(to)}} {
		if _, err := os.Lstat(m[0]); errors.Is(err, os.ErrNotExist) {
			continue // moved before the crash (or a store without a state file)
		}
		if err := moveNoReplace(m[0], m[1]); err != nil {
			return fmt.Errorf("finish moving store %s: %w", from, err)
		}
	}
	dir := filepath.Dir(from)
	if err := atomicfile.SyncDir(dir); err != nil {
		return err
	}
	if err := os.Remove(note); err != nil {
		return fmt.Errorf("finish moving store %s: %w", from, err)
	}
	return atomicfile.SyncDir(dir)
}

// moveNoReplace renames from to to, never over an existing file (a
// rename would replace it: two processes finishing one move must not put
// a fresh store over the kept one). It links the new name and then
// removes the old; a crash between the two leaves both names on one file,
// which the next call completes.
func moveNoReplace(from, to string) error {
	err := os.Link(from, to)
	if errors.Is(err, os.ErrExist) {
		fi, ferr := os.Lstat(from)
		ti, terr := os.Lstat(to)
		if ferr != nil || terr != nil || !os.SameFile(fi, ti) {
			return fmt.Errorf("both %s and %s exist", from, to)
		}
	} else if err != nil {
		return err
	}
	return os.Remove(from)
}
