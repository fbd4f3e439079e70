#!/usr/bin/env python3
"""Trims Microsoft Graph v1.0's CSDL (microsoftgraph/msgraph-metadata,
clean_v10_metadata/cleanMetadata.xml) to the types the emulator answers, with every complex and
enum type their properties use: graph-v1.0.json. Run with the file and its commit:

    git show <commit>:clean_v10_metadata/cleanMetadata.xml > /tmp/graph.xml
    python3 emulator/specs/trim_graph.py /tmp/graph.xml <commit> <date> > emulator/specs/graph-v1.0.json
"""
import json
import sys
import xml.etree.ElementTree as ET

ROOTS = [
    "application", "servicePrincipal", "federatedIdentityCredential", "appRoleAssignment",
    "directoryRole", "user", "authorizationPolicy", "passwordCredential",
]
NS = {"e": "http://docs.oasis-open.org/odata/ns/edm"}

path, commit, date = sys.argv[1:4]
schema = ET.parse(path).getroot().find(".//e:Schema[@Namespace='microsoft.graph']", NS)
by_name = {}
for kind in ("EntityType", "ComplexType", "EnumType"):
    for t in schema.findall(f"e:{kind}", NS):
        by_name[t.get("Name")] = (kind, t)

out, todo = {}, list(ROOTS)
while todo:
    name = todo.pop()
    if name in out or name not in by_name:
        continue
    kind, t = by_name[name]
    if kind == "EnumType":
        out[name] = {"kind": "enum", "members": [m.get("Name") for m in t.findall("e:Member", NS)]}
        continue
    props = {}
    for p in t.findall("e:Property", NS):
        ty = p.get("Type")
        props[p.get("Name")] = {"type": ty, "nullable": p.get("Nullable") != "false"}
        inner = ty[len("Collection("):-1] if ty.startswith("Collection(") else ty
        if inner.startswith("graph."):
            todo.append(inner[len("graph."):])
    base = t.get("BaseType")
    entry = {"kind": kind[:-4].lower(), "properties": props}
    if base:
        entry["base"] = base[len("graph."):]
        todo.append(entry["base"])
    out[name] = entry

print(json.dumps({
    "source": {
        "repository": "microsoftgraph/msgraph-metadata",
        "path": "clean_v10_metadata/cleanMetadata.xml",
        "commit": commit,
        "date": date,
        "apiVersion": "v1.0",
        "note": "trimmed by emulator/specs/trim_graph.py: the types the emulator answers and what their properties use; navigation properties left out (Graph sends them only when asked with $expand)",
    },
    "types": dict(sorted(out.items())),
}, indent=1))
