#!/usr/bin/env python3
"""Copy each buildspec into its CodeBuild project's Source.BuildSpec in template.yaml, verbatim:
buildspec.yml -> BuildProject (the container build), buildspec-code.yml -> LayerProject (the
code path's dependency layer).

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
# Resource -> the file its BuildSpec copies.
BUILDSPECS = {"BuildProject": BUILDSPEC, "LayerProject": ROOT / "buildspec-code.yml"}
KEY = re.compile(r"^(?P<indent>[ ]*)BuildSpec: \|[ ]*$")


def resource_lines(lines: list[str], resource: str) -> range:
    """The lines of `resource` (a top-level key under Resources, indented two spaces)."""
    head = [i for i, line in enumerate(lines) if line.rstrip() == f"  {resource}:"]
    if len(head) != 1:
        sys.exit(f"{TEMPLATE.name}: expected one resource {resource}, found {len(head)}")
    end = head[0] + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith("   ")):
        end += 1
    return range(head[0], end)


def render(template: str, buildspec: str, resource: str = "BuildProject") -> str:
    lines = template.splitlines(keepends=True)
    starts = [i for i in resource_lines(lines, resource) if KEY.match(lines[i])]
    if len(starts) != 1:
        sys.exit(f"{TEMPLATE.name}: expected exactly one 'BuildSpec: |' line in {resource}, found {len(starts)}")
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


def embedded_buildspec(template_text: str, resource: str = "BuildProject") -> str | None:
    """`resource`'s BuildSpec string as a YAML parser sees it (None when PyYAML is absent)."""
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
    return doc["Resources"][resource]["Properties"]["Source"]["BuildSpec"]


def main() -> int:
    template = TEMPLATE.read_text()
    wanted = template
    for resource, path in BUILDSPECS.items():
        wanted = render(wanted, path.read_text(), resource)
    if "--check" in sys.argv[1:]:
        stale = [
            f"{resource} != {path.name}"
            for resource, path in BUILDSPECS.items()
            if wanted != template
            or (embedded_buildspec(template, resource) or path.read_text()) != path.read_text()
        ]
        if stale:
            print(
                f"template.yaml's BuildSpec differs ({', '.join(stale)}): "
                "run `python3 scripts/sync_buildspec.py`",
                file=sys.stderr,
            )
            return 1
        print("buildspec: template.yaml's BuildSpecs == " + ", ".join(p.name for p in BUILDSPECS.values()))
        return 0
    if wanted != template:
        TEMPLATE.write_text(wanted)
        print("buildspec: copied " + ", ".join(p.name for p in BUILDSPECS.values()) + " into template.yaml")
    else:
        print("buildspec: template.yaml already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
