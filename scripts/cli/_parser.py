"""The one parser helper of the commands: flags come from the libraries' settings dataclasses.

`CommandParser` is transformers' `HfArgumentParser` (the parser TRL's scripts use) with the flag shapes our commands
need, read from each dataclass field's metadata:

- `help`: the flag's help text;
- `positional=True`: a positional argument instead of `--name`;
- a `bool` field that defaults to False: a plain switch (`--overwrite`), not HfArgumentParser's `--overwrite [BOOL]`
  (which would swallow the next positional argument);
- `exclusive="<group>"`: fields with the same group name are mutually exclusive (argparse's message);
- `choices`, `nargs`, `const`, `metavar`: passed to argparse; `flag`: the option string (a bool field that defaults
  to True is the switch `--no-<name>` unless `flag` says otherwise).

Only the dashed spelling is offered (`--max-new-tokens`). Shapes a field cannot express (`--set KEY=VALUE` lists,
`--truth START END`) are added with plain `add_argument` and come back in the extra namespace.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from typing import Any, Callable, Literal, Union, get_args, get_origin, get_type_hints

from transformers import HfArgumentParser

from groundvts.scripts.cli._errors import run_command

_ARGPARSE_KEYS = ("choices", "nargs", "const", "metavar")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and each flag's default."""


class CommandParser(HfArgumentParser):
    def __init__(self, settings_types: list[type] | tuple[type, ...] = (), **kwargs: Any):
        kwargs.setdefault("formatter_class", _HelpFormatter)
        self._exclusive: dict[str, argparse._MutuallyExclusiveGroup] = {}
        super().__init__(list(settings_types), **kwargs)

    def _add_dataclass_arguments(self, dtype: type) -> None:
        target = self.add_argument_group(dtype._argument_group_name) if hasattr(dtype, "_argument_group_name") else self
        hints = get_type_hints(dtype)
        for field in dataclasses.fields(dtype):
            if field.init:
                self._add_field(target, field, hints[field.name])

    def _add_field(self, target: Any, field: dataclasses.Field, hint: Any) -> None:
        meta = dict(field.metadata)
        kwargs: dict[str, Any] = {k: meta[k] for k in _ARGPARSE_KEYS if k in meta}
        kwargs["help"] = meta.get("help")
        hint = _strip_optional(hint)
        has_default = field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
        default = field.default if field.default is not dataclasses.MISSING else (
            field.default_factory() if field.default_factory is not dataclasses.MISSING else None
        )
        if hint is bool:
            kwargs["action"] = "store_false" if default else "store_true"
            kwargs.pop("nargs", None)
        else:
            if get_origin(hint) is Literal:
                kwargs.setdefault("choices", get_args(hint))
                kwargs["type"] = type(get_args(hint)[0])
            elif get_origin(hint) in (list, tuple):
                kwargs["type"] = get_args(hint)[0]
                kwargs.setdefault("nargs", "+")
            else:
                kwargs["type"] = hint
        if meta.get("positional"):
            if has_default:
                kwargs.setdefault("nargs", "?")
                kwargs["default"] = default
            target.add_argument(field.name, **kwargs)
            return
        kwargs["dest"] = field.name
        if has_default:
            kwargs["default"] = default
        else:
            kwargs["required"] = True
        if (group := meta.get("exclusive")) is not None:
            if group not in self._exclusive:
                self._exclusive[group] = target.add_mutually_exclusive_group()
            target = self._exclusive[group]
        negated = hint is bool and default is True  # the switch turns it off
        flag = meta.get("flag", f"--{'no-' if negated else ''}{field.name.replace('_', '-')}")
        target.add_argument(flag, **kwargs)

    def run(self, argv: list[str] | None, command: Callable[..., int | None]) -> int:
        """A command's whole `main`: parse `argv`, then `command(*settings, extra_namespace)` through `run_command`
        (expected errors -> `error: ...` and an exit code); argparse's code for --help and bad usage."""
        parsed = self.parse_command(argv)
        if isinstance(parsed, int):
            return parsed
        return run_command(lambda: command(*parsed))

    def parse_command(self, argv: list[str] | None) -> tuple | int:
        """(*settings, extra namespace), or argparse's exit code (0 after --help, 2 for bad usage) instead of raising
        SystemExit. A settings dataclass that rejects its values (a ValueError in `__post_init__`) is a usage error."""
        try:
            namespace = self.parse_args(argv)
            outputs = []
            for dtype in self.dataclass_types:
                names = [f.name for f in dataclasses.fields(dtype) if f.init]
                try:
                    outputs.append(dtype(**{name: getattr(namespace, name) for name in names}))
                except ValueError as error:
                    self.error(str(error))
                for name in names:
                    delattr(namespace, name)
            return (*outputs, namespace)
        except SystemExit as exit_:
            return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2


def _strip_optional(hint: Any) -> Any:
    """`X | None` -> X; other unions are not flags."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"a settings field can hold one type (or None), not {hint}")
        return args[0]
    return hint
