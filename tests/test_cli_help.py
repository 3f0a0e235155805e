"""``cgzoo <verb> --help``: every option says what it does, and what it is when not given."""

from __future__ import annotations

import argparse

from cgzoo.cli import build_parser


def _subcommand_options() -> list[tuple[str, argparse.Action]]:
    """(verb, action) of every option and positional of every argparse verb (the Lightning verbs have their own help)."""
    (verbs,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return [(verb, action) for verb, parser in verbs.choices.items() for action in parser._actions
            if not isinstance(action, argparse._HelpAction)]


def _has_default(action: argparse.Action) -> bool:
    """Whether the option takes a value when not given (a flag's False and an empty list are no value)."""
    return not (action.default is None or action.default is False or action.default == [] or action.default is argparse.SUPPRESS)


def test_every_option_has_help_and_shows_its_default():
    options = _subcommand_options()
    undescribed = [f"{verb} {action.dest}" for verb, action in options if not action.help]
    silent_defaults = [f"{verb} {action.dest}" for verb, action in options
                       if _has_default(action) and "default" not in (action.help or "")]
    assert not undescribed and not silent_defaults, (undescribed, silent_defaults)
