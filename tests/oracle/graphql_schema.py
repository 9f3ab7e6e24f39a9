"""The schema drift oracle: graphql-core (the reference implementation's
Python port) reads what the server answers to the standard introspection
query and compares it with `schema.graphql`.

Usage:
  graphql_schema.py query                      prints the introspection query
  graphql_schema.py check INTROSPECTION SDL    exits 1 listing every difference

The check fails when
  - the schema built from the introspection answer prints differently from
    the committed SDL (both printed by graphql-core, so formatting is not
    compared, only the schema: types, fields, arguments, defaults and
    descriptions);
  - a type in either is not reachable from `query_root` / `mutation_root`
    (a type nobody can use is not part of the served schema).
"""

import json
import sys

from graphql import (
    build_client_schema,
    build_schema,
    get_introspection_query,
    get_named_type,
    is_input_object_type,
    is_interface_type,
    is_object_type,
    is_union_type,
    print_schema,
)


def reachable(schema):
    roots = [t for t in (schema.query_type, schema.mutation_type, schema.subscription_type) if t]
    seen = set()
    todo = list(roots)
    while todo:
        named = get_named_type(todo.pop())
        if named.name in seen:
            continue
        seen.add(named.name)
        if is_object_type(named) or is_interface_type(named):
            for field in named.fields.values():
                todo.append(field.type)
                todo.extend(arg.type for arg in field.args.values())
            todo.extend(named.interfaces)
        elif is_input_object_type(named):
            todo.extend(f.type for f in named.fields.values())
        elif is_union_type(named):
            todo.extend(named.types)
    return seen


def unreachable(schema, what):
    used = reachable(schema)
    return [
        f"{what}: type `{name}` is not reachable from any root field"
        for name in sorted(schema.type_map)
        if not name.startswith("__") and name not in used
        and name not in ("String", "Int", "Float", "Boolean", "ID")
    ]


def main():
    if sys.argv[1:] == ["query"]:
        print(get_introspection_query(descriptions=True))
        return 0
    _, _, introspection_path, sdl_path = sys.argv
    with open(introspection_path, encoding="utf-8") as f:
        answer = json.load(f)
    with open(sdl_path, encoding="utf-8") as f:
        sdl = f.read()
    served = build_client_schema(answer["data"])
    committed = build_schema(sdl)
    problems = unreachable(served, "served") + unreachable(committed, "schema.graphql")
    served_text = print_schema(served)
    committed_text = print_schema(committed)
    if served_text != committed_text:
        import difflib

        diff = difflib.unified_diff(
            committed_text.splitlines(), served_text.splitlines(), "schema.graphql", "introspection", lineterm="", n=1
        )
        problems.append("schema.graphql differs from the served schema:\n" + "\n".join(list(diff)[:200]))
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
