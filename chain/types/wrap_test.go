package types_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/chain/types"
)

func TestWrap(t *testing.T) {
	kind := types.NewError("test", 7, "bad thing")
	lower := errors.New("bad thing")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{lower, "bad thing"},
		{fmt.Errorf("%w: of 3 bytes", lower), "bad thing: of 3 bytes"},
		{errors.New("bad things happen"), "bad thing: bad things happen"},
		{errors.New("other"), "bad thing: other"},
	} {
		w := types.Wrap(kind, tc.err)
		if w.Error() != tc.want {
			t.Errorf("Wrap(%q) = %q, want %q", tc.err, w, tc.want)
		}
		if !errors.Is(w, kind) || !errors.Is(w, tc.err) {
			t.Errorf("Wrap(%q) does not match both errors", tc.err)
		}
		if cs, code, log := types.ABCIInfo(w); cs != "test" || code != 7 || log != tc.want {
			t.Errorf("ABCIInfo(Wrap(%q)) = %s/%d %q", tc.err, cs, code, log)
		}
	}
}
