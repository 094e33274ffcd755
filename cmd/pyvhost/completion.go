package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionCommand prints a shell's completion script: it asks pyvhost
// itself (--generate-bash-completion) for the words that may come next.
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		ArgsUsage: "bash|zsh|fish",
		Usage:     "print a shell completion script",
		Description: "Examples:\n" +
			"   pyvhost completion bash > /etc/bash_completion.d/pyvhost\n" +
			"   pyvhost completion zsh > \"${fpath[1]}/_pyvhost\"\n" +
			"   pyvhost completion fish > ~/.config/fish/completions/pyvhost.fish",
		Action: runCompletion,
	}
}

// bashCompletion completes each word from what pyvhost says fits after
// the words before it.
const bashCompletion = `# pyvhost(1) completion for bash: pyvhost completion bash
_pyvhost() {
    local cur=${COMP_WORDS[COMP_CWORD]} words
    if [[ $cur == -* ]]; then
        words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
    else
        words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
    fi
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o default -F _pyvhost pyvhost
`

// zshCompletion runs the bash one through zsh's bashcompinit.
const zshCompletion = `#compdef pyvhost
# pyvhost(1) completion for zsh: pyvhost completion zsh
autoload -U +X bashcompinit && bashcompinit
` + bashCompletion

func runCompletion(c *cli.Context) error {
	var script string
	switch c.Args().First() {
	case "bash":
		script = bashCompletion
	case "zsh":
		script = zshCompletion
	case "fish":
		s, err := c.App.ToFishCompletion()
		if err != nil {
			return err
		}
		script = s
	default:
		return usagef("completion takes bash, zsh or fish, not %q", c.Args().First())
	}
	_, err := fmt.Fprint(c.App.Writer, script)
	return err
}
