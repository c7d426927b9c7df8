#!/usr/bin/env python3
"""Copy buildspec.yml into template.yaml's CodeBuild project (Source.BuildSpec), verbatim.

CloudFormation cannot read a local file into a string property (AWS::Include only splices
YAML/JSON *structure*, and `sam package` does not upload CodeBuild buildspecs), and the buildspec
must not come from the source zip (that is the caller's). So buildspec.yml is the file people
edit and read, and the template carries a generated copy as a literal block.

    python3 scripts/sync_buildspec.py          # rewrite the copy in template.yaml
    python3 scripts/sync_buildspec.py --check  # exit 1 when the copy differs (make test)
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
BUILDSPEC = ROOT / "buildspec.yml"
KEY = re.compile(r"^(?P<indent>[ ]*)BuildSpec: \|[ ]*$")


def render(template: str, buildspec: str) -> str:
    lines = template.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if KEY.match(line)]
    if len(starts) != 1:
        sys.exit(f"{TEMPLATE.name}: expected exactly one 'BuildSpec: |' line, found {len(starts)}")
    start = starts[0]
    indent = len(KEY.match(lines[start])["indent"])
    end = start + 1  # the block runs while lines are blank or indented deeper than the key
    while end < len(lines) and (
        not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip(" ")) > indent
    ):
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1  # blank lines after the block separate it from the next key; keep them

    spec = buildspec.splitlines()
    if not spec or spec[0] != spec[0].lstrip() or not spec[0].strip():
        sys.exit(f"{BUILDSPEC.name}: its first line must be non-blank and unindented")
    if any("\t" in line or line != line.rstrip() for line in spec):
        sys.exit(f"{BUILDSPEC.name}: no tabs or trailing spaces (a YAML literal block keeps them)")
    pad = " " * (indent + 2)
    block = [f"{pad}{line}\n" if line else "\n" for line in spec]
    return "".join(lines[: start + 1] + block + lines[end:])


def embedded_buildspec(template_text: str) -> str | None:
    """The BuildSpec string as a YAML parser sees it (None when PyYAML is absent)."""
    try:
        import yaml
    except ImportError:
        return None

    class Loader(yaml.SafeLoader):
        pass

    def any_tag(loader, suffix, node):  # CloudFormation's short forms: !Ref, !Sub, ...
        if isinstance(node, yaml.ScalarNode):
            return loader.construct_scalar(node)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node)
        return loader.construct_mapping(node)

    Loader.add_multi_constructor("!", any_tag)
    doc = yaml.load(template_text, Loader=Loader)  # noqa: S506 - SafeLoader subclass
    for resource in doc["Resources"].values():
        if resource.get("Type") == "AWS::CodeBuild::Project":
            return resource["Properties"]["Source"]["BuildSpec"]
    return None


def main() -> int:
    template = TEMPLATE.read_text()
    buildspec = BUILDSPEC.read_text()
    wanted = render(template, buildspec)
    if "--check" in sys.argv[1:]:
        embedded = embedded_buildspec(template)
        if wanted != template or (embedded is not None and embedded != buildspec):
            print(
                "template.yaml's BuildSpec differs from buildspec.yml: "
                "run `python3 scripts/sync_buildspec.py`",
                file=sys.stderr,
            )
            return 1
        print("buildspec: template.yaml's BuildSpec == buildspec.yml")
        return 0
    if wanted != template:
        TEMPLATE.write_text(wanted)
        print("buildspec: copied buildspec.yml into template.yaml")
    else:
        print("buildspec: template.yaml already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
