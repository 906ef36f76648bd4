#!/usr/bin/env python3
"""Validates OpenLineage events (one JSON object per line) against the spec's JSON Schemas.

usage: validate_openlineage.py SCHEMA_DIR EVENTS.jsonl

SCHEMA_DIR holds OpenLineage.json and facets/*.json (../shared/data/openlineage). Each event is
validated against OpenLineage.json; then every facet it carries (run, job, dataset, input and
output facets) against the facet schema that defines that facet's key. A facet no schema
defines is an error: clicklake emits only standard facets. Validation is python3-jsonschema's
(Draft 2020-12, with its format checker); this script only wires up the schema files.
Exit status 0 when every event is valid, 1 otherwise (errors on stderr).
"""
import json
import os
import sys

import jsonschema
from referencing import Registry, Resource


def load(schema_dir):
    resources = []
    core = json.load(open(os.path.join(schema_dir, "OpenLineage.json")))
    resources.append((core["$id"], Resource.from_contents(core)))
    facet_schemas = {}  # facet key -> schema
    facet_dir = os.path.join(schema_dir, "facets")
    for name in sorted(os.listdir(facet_dir)):
        if not name.endswith(".json"):
            continue
        schema = json.load(open(os.path.join(facet_dir, name)))
        resources.append((schema["$id"], Resource.from_contents(schema)))
        for key in schema.get("properties", {}):
            facet_schemas.setdefault(key, []).append(schema)
    registry = Registry().with_resources(resources)
    return core, facet_schemas, registry


def validator(schema, registry):
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


def facet_groups(event):
    run = event.get("run", {})
    yield "run.facets", run.get("facets", {})
    yield "job.facets", event.get("job", {}).get("facets", {})
    for side in ("inputs", "outputs"):
        for i, d in enumerate(event.get(side, [])):
            yield f"{side}[{i}].facets", d.get("facets", {})
            yield f"{side}[{i}].inputFacets", d.get("inputFacets", {})
            yield f"{side}[{i}].outputFacets", d.get("outputFacets", {})


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    core, facet_schemas, registry = load(sys.argv[1])
    core_validator = validator(core, registry)
    errors = 0
    count = 0
    with open(sys.argv[2]) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            count += 1
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                print(f"line {lineno}: not JSON: {e}", file=sys.stderr)
                errors += 1
                continue
            for err in core_validator.iter_errors(event):
                print(f"line {lineno}: {err.json_path}: {err.message}", file=sys.stderr)
                errors += 1
            for where, facets in facet_groups(event):
                for key, value in facets.items():
                    schemas = facet_schemas.get(key)
                    if not schemas:
                        print(f"line {lineno}: {where}.{key}: no OpenLineage facet schema defines it", file=sys.stderr)
                        errors += 1
                        continue
                    # A key two schemas define (dataQualityMetrics: dataset and input facet) passes if either accepts it.
                    failures = []
                    for schema in schemas:
                        errs = list(validator(schema, registry).iter_errors({key: value}))
                        if not errs:
                            failures = []
                            break
                        failures.extend(errs)
                    for err in failures:
                        print(f"line {lineno}: {where}.{key}: {err.json_path}: {err.message}", file=sys.stderr)
                        errors += 1
    print(f"{count} events, {errors} errors")
    return 1 if errors or count == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
