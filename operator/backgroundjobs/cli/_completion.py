"""Shell completion, Cobra's way: ``bgjobs __complete ARGS... WORD`` prints the candidates for
WORD, one a line (``value<TAB>help``), then ``:<directive>``. The bash and zsh scripts of
``bgjobs completion`` call it, and so does kubectl for ``kubectl bgjobs`` through the
``kubectl_complete-bgjobs`` executable (kubectl's plugin-completion convention)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

# Cobra's ShellCompDirectiveNoFileComp: no file names as a fallback.
NO_FILE_COMPLETION = 4
# Cobra's ShellCompDirectiveDefault: the shell may complete file names (a FILE argument).
DEFAULT = 0
FILE_FLAGS = frozenset({"--kubeconfig", "--pod-template"})

BASH = """\
# bash completion for {prog} (source it: source <({prog} completion bash))
_bgjobs_complete() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" IFS=$'\\n' out directive
    out=$("${{COMP_WORDS[0]}}" __complete "${{COMP_WORDS[@]:1:COMP_CWORD-1}}" "$cur" 2>/dev/null) \\
        || return
    directive=${{out##*:}}
    COMPREPLY=($(printf '%s\\n' "$out" | grep -v '^:' | cut -f1))
    if [[ ${{#COMPREPLY[@]}} -eq 0 && $directive == 0 ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}}
complete -F _bgjobs_complete {prog}
"""

ZSH = """\
#compdef {prog}
# zsh completion for {prog} (source it: source <({prog} completion zsh))
autoload -U +X bashcompinit && bashcompinit
""" + BASH.split("\n", 1)[1]


def script(shell: str, prog: str = "bgjobs") -> str:
    """The completion script of ``shell`` (bash or zsh) for the command ``prog``."""
    return (BASH if shell == "bash" else ZSH).format(prog=prog)


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def _flags(parser: argparse.ArgumentParser) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if action.help == argparse.SUPPRESS:
            continue
        for option in action.option_strings:
            yield option, action


def complete(parser: argparse.ArgumentParser, words: Sequence[str]) -> tuple[list[str], int]:
    """The candidates for the last of ``words`` (the word being typed, maybe empty) after the
    others, and the directive."""
    *done, current = words or [""]
    command = parser
    expects_value: argparse.Action | None = None
    for word in done:
        if expects_value is not None:
            expects_value = None
            continue
        if word.startswith("-"):
            action = dict(_flags(command)).get(word.split("=", 1)[0])
            if action is not None and action.nargs != 0 and "=" not in word:
                expects_value = action
            continue
        sub = _subcommands(command).get(word)
        if sub is not None:
            command = sub
    if expects_value is not None:  # the value of a flag
        option = expects_value.option_strings[-1]
        # choices, or suggestions for a flag whose values are open (-o jsonpath=...)
        offered = expects_value.choices or getattr(expects_value, "suggestions", None)
        if offered:
            return [str(c) for c in offered if str(c).startswith(current)], NO_FILE_COMPLETION
        return [], DEFAULT if option in FILE_FLAGS else NO_FILE_COMPLETION
    if current.startswith("-"):
        return [
            f"{option}\t{action.help or ''}".rstrip("\t")
            for option, action in _flags(command)
            if option.startswith(current)
        ], NO_FILE_COMPLETION
    return [
        f"{name}\t{_help_of(command, name)}".rstrip("\t")
        for name in _subcommands(command)
        if name.startswith(current) and not name.startswith("_")
    ], NO_FILE_COMPLETION


def print_completions(parser: argparse.ArgumentParser, words: Sequence[str]) -> int:
    candidates, directive = complete(parser, words)
    for candidate in candidates:
        print(candidate)
    print(f":{directive}")
    return 0
