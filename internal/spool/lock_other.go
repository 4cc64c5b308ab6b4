//go:build !unix

package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockDir creates the directory's LOCK file exclusively. Unlike flock, a
// crashed process leaves it behind: remove it by hand.
func lockDir(_ FS, dir string) (lockFile, error) {
	p := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("%w: %s (remove %s if no process uses it)", ErrLocked, dir, p)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return removeOnClose{f, p}, nil
}

type removeOnClose struct {
	*os.File
	path string
}

func (r removeOnClose) Close() error {
	err := r.File.Close()
	_ = os.Remove(r.path)
	return err
}
