package deployer

import "testing"

// The daemon re-reads beside the nginx -t right before it, never beside
// one that something else follows (the app's settings, the ACME
// challenge's reload).
func TestRereadFollowsTest(t *testing.T) {
	steps := func(ids ...StepID) []Step {
		var out []Step
		for _, id := range ids {
			out = append(out, Step{ID: id})
		}
		return out
	}
	tests := []struct {
		name  string
		steps []Step
		want  int
	}{
		{"a new site", steps(StepPreflight, StepWrite, StepNginxTest, StepDaemon, StepLoad, StepNginxReload), 1},
		{"settings in between", steps(StepWrite, StepNginxTest, StepSettings, StepDaemon, StepLoad), 0},
		{"ACME: the challenge's test, then the site's", steps(StepACMEWrite, StepNginxTest, StepACMEReload, StepWrite, StepNginxTest, StepDaemon), 2},
		{"no re-read", steps(StepWrite, StepNginxTest, StepNginxReload), 0},
		{"the test beside the reload", steps(StepWrite, StepNginxTest, StepNginxReload, StepDaemon, StepLoad, StepNginxVerdict), 1},
		{"the test beside the reload, settings in between", steps(StepWrite, StepNginxTest, StepNginxReload, StepSettings, StepDaemon), 0},
	}
	for _, tc := range tests {
		if got := rereadFollowsTest(tc.steps); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}
