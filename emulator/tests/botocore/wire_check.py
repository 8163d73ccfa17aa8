"""Strict comparison of raw emulator responses with botocore's service models.

botocore is lenient: it drops members it has no model for, reads any text other than `true` as
a false boolean, accepts list items under any element name, and parses a timestamp in any
format. A response that botocore swallows that way can still carry a wrong value, or break a
stricter client. This checker walks every raw response body against the operation's output
shape, the way botocore's own parser does, and reports each place where the two disagree.

Attach it to a client with `WireChecker.attach(client)`: a mismatch then fails the call that
received it with `WireMismatch`, naming the operation, the path in the body and what the model
expects.
"""

from __future__ import annotations

import json
import re
import threading
import xml.etree.ElementTree as ETree

from botocore.utils import parse_timestamp

_NS = re.compile(r"\{.*\}")
_ISO8601 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_RFC822 = re.compile(r"^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$")


# What the live services send although botocore's model does not describe it. botocore parses
# each of these without harm; they are listed, with the evidence, so that nothing else is let by.
LIVE_SERVICE_DEVIATIONS = [
    # EC2's documented CreateSecurityGroup response carries <return>true</return> beside groupId.
    (re.compile(r"^ec2\.CreateSecurityGroup: /return: element not in"), "EC2 API reference example"),
    # Config reports the recorder's last status in upper case (the CIS benchmark's audit step
    # checks for "SUCCESS"); the model's enum is Pending | Success | Failure | NotApplicable.
    (
        re.compile(r"^config\.DescribeConfigurationRecorderStatus: ConfigurationRecordersStatus\[\d+\]\.lastStatus: 'SUCCESS' is not one of"),
        "live Config output",
    ),
]


def _tolerated(problem: str) -> bool:
    return any(pattern.search(problem) for pattern, _ in LIVE_SERVICE_DEVIATIONS)


class WireMismatch(AssertionError):
    """A response that botocore's model does not describe."""


def _tag(node) -> str:
    return _NS.sub("", node.tag)


def _protocol(operation_model) -> str:
    service = operation_model.service_model
    return getattr(service, "resolved_protocol", None) or service.protocol


class _Walk:
    def __init__(self, where: str):
        self.where = where
        self.problems: list[str] = []

    def problem(self, path: str, message: str) -> None:
        self.problems.append(f"{self.where}: {path or '<body>'}: {message}")

    # -- timestamps ---------------------------------------------------------------------------

    def timestamp_text(self, path: str, shape, text: str, default_format: str) -> None:
        fmt = shape.serialization.get("timestampFormat", default_format)
        try:
            parse_timestamp(text)
        except Exception as e:  # noqa: BLE001 - any failure is the finding
            self.problem(path, f"timestamp {text!r} does not parse ({e})")
            return
        if fmt == "iso8601" and not _ISO8601.match(text):
            self.problem(path, f"timestamp {text!r} is not ISO 8601 (the model says {fmt})")
        elif fmt == "unixTimestamp":
            try:
                float(text)
            except ValueError:
                self.problem(path, f"timestamp {text!r} is not epoch seconds (the model says {fmt})")
        elif fmt == "rfc822" and not _RFC822.match(text):
            self.problem(path, f"timestamp {text!r} is not an HTTP date (the model says {fmt})")

    def enum(self, path: str, shape, value: str) -> None:
        allowed = shape.metadata.get("enum")
        if allowed and value not in allowed:
            self.problem(path, f"{value!r} is not one of {shape.name}'s values {sorted(allowed)}")

    # -- JSON ---------------------------------------------------------------------------------

    def json_value(self, path: str, shape, value) -> None:
        if value is None:
            return
        t = shape.type_name
        if t == "structure":
            if getattr(shape, "is_document_type", False):
                return
            if not isinstance(value, dict):
                self.problem(path, f"expected an object ({shape.name}), got {type(value).__name__}")
                return
            self.json_struct(path, shape, value, shape.members)
        elif t == "list":
            if not isinstance(value, list):
                self.problem(path, f"expected a list ({shape.name}), got {type(value).__name__}")
                return
            for i, item in enumerate(value):
                self.json_value(f"{path}[{i}]", shape.member, item)
        elif t == "map":
            if not isinstance(value, dict):
                self.problem(path, f"expected a map ({shape.name}), got {type(value).__name__}")
                return
            for k, v in value.items():
                self.json_value(f"{path}[{k!r}]", shape.value, v)
        elif t == "string":
            if shape.serialization.get("jsonvalue"):
                return
            if not isinstance(value, str):
                self.problem(path, f"expected a string, got {type(value).__name__} {value!r}")
                return
            self.enum(path, shape, value)
        elif t in ("integer", "long"):
            if isinstance(value, bool) or not isinstance(value, int):
                self.problem(path, f"expected an integer, got {type(value).__name__} {value!r}")
        elif t in ("float", "double"):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)) or value in (
                "NaN",
                "Infinity",
                "-Infinity",
            )
            if not ok:
                self.problem(path, f"expected a number, got {type(value).__name__} {value!r}")
        elif t == "boolean":
            if not isinstance(value, bool):
                self.problem(path, f"expected a boolean, got {type(value).__name__} {value!r}")
        elif t == "timestamp":
            fmt = shape.serialization.get("timestampFormat", "unixTimestamp")
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                self.problem(path, f"expected a timestamp, got {type(value).__name__} {value!r}")
            elif isinstance(value, str):
                if fmt == "unixTimestamp":
                    self.problem(path, f"timestamp {value!r} is a string; the model says epoch seconds (a number)")
                else:
                    self.timestamp_text(path, shape, value, fmt)
            elif fmt != "unixTimestamp":
                self.problem(path, f"timestamp {value!r} is a number; the model says {fmt}")
        elif t == "blob":
            if not isinstance(value, str):
                self.problem(path, f"expected base64 text, got {type(value).__name__}")

    def json_struct(self, path: str, shape, value: dict, members) -> None:
        by_wire_name = {m.serialization.get("name", name): m for name, m in members.items()}
        for key, v in value.items():
            member = by_wire_name.get(key)
            child = f"{path}.{key}" if path else key
            if member is None:
                self.problem(child, f"member not in {shape.name}'s model: botocore drops it")
                continue
            self.json_value(child, member, v)
        self.required(path, shape, members, {k for k, v in value.items() if v is not None}, lambda n, m: m.serialization.get("name", n))

    def required(self, path: str, shape, members, present, wire_name) -> None:
        for name in getattr(shape, "required_members", []):
            member = members.get(name)
            if member is None or member.serialization.get("location"):
                continue
            if wire_name(name, member) not in present:
                self.problem(path, f"required member {wire_name(name, member)} of {shape.name} is missing")

    # -- XML ----------------------------------------------------------------------------------

    @staticmethod
    def member_key_name(shape, member_name: str) -> str:
        if shape.type_name == "list" and shape.serialization.get("flattened"):
            name = shape.member.serialization.get("name")
            if name is not None:
                return name
        return shape.serialization.get("name", member_name)

    def xml_value(self, path: str, shape, node) -> None:
        t = shape.type_name
        if t == "structure":
            self.xml_struct(path, shape, node)
        elif t == "list":
            expected = shape.member.serialization.get("name", "member")
            if (node.text or "").strip():
                self.problem(path, f"list {shape.name} has text {node.text.strip()!r}")
            for i, item in enumerate(node):
                if _tag(item) != expected:
                    self.problem(f"{path}/{_tag(item)}", f"list item element is <{_tag(item)}>, the model names <{expected}>")
                self.xml_value(f"{path}[{i}]", shape.member, item)
        elif t == "map":
            self.xml_map_entries(path, shape, list(node))
        else:
            if len(node):
                self.problem(path, f"expected text ({t}), got child elements {[_tag(c) for c in node]}")
                return
            self.xml_scalar(path, shape, node.text or "")

    def xml_map_entries(self, path: str, shape, entries) -> None:
        key_name = shape.key.serialization.get("name") or "key"
        value_name = shape.value.serialization.get("name") or "value"
        for entry in entries:
            tags = [_tag(c) for c in entry]
            if sorted(tags) != sorted([key_name, value_name]):
                self.problem(path, f"map entry has {tags}, the model names {key_name} and {value_name}")
                continue
            for c in entry:
                sub = shape.key if _tag(c) == key_name else shape.value
                self.xml_value(f"{path}/{_tag(c)}", sub, c)

    def xml_scalar(self, path: str, shape, text: str) -> None:
        t = shape.type_name
        if t == "boolean":
            if text not in ("true", "false"):
                self.problem(path, f"boolean {text!r} is neither 'true' nor 'false' (botocore reads it as False)")
        elif t in ("integer", "long"):
            try:
                int(text)
            except ValueError:
                self.problem(path, f"expected an integer, got {text!r}")
        elif t in ("float", "double"):
            try:
                float(text)
            except ValueError:
                self.problem(path, f"expected a number, got {text!r}")
        elif t == "timestamp":
            self.timestamp_text(path, shape, text, "iso8601")
        elif t == "string":
            self.enum(path, shape, text)

    def xml_struct(self, path: str, shape, node, extra=()) -> None:
        if (node.text or "").strip() and not len(node):
            self.problem(path, f"expected a {shape.name} structure, got text {node.text.strip()!r}")
            return
        known = {}
        for name, member in shape.members.items():
            if member.serialization.get("location") or member.serialization.get("xmlAttribute"):
                continue
            known[self.member_key_name(member, name)] = member
        groups: dict[str, list] = {}
        for child in node:
            groups.setdefault(_tag(child), []).append(child)
        for tag, nodes in groups.items():
            child_path = f"{path}/{tag}"
            member = known.get(tag)
            if member is None:
                if tag not in extra:
                    self.problem(child_path, f"element not in {shape.name}'s model: botocore drops it")
                continue
            flattened = member.type_name in ("list", "map") and member.serialization.get("flattened")
            if flattened and member.type_name == "list":
                for i, n in enumerate(nodes):
                    self.xml_value(f"{child_path}[{i}]", member.member, n)
            elif flattened:
                self.xml_map_entries(child_path, member, nodes)
            else:
                if len(nodes) > 1:
                    self.problem(child_path, f"element repeated {len(nodes)} times, but the member is not a flattened list")
                self.xml_value(child_path, member, nodes[0])
        attributes = {_NS.sub("", k) for k in node.attrib}
        present = set(groups) | {
            self.member_key_name(m, n)
            for n, m in shape.members.items()
            if m.serialization.get("xmlAttribute") and self.member_key_name(m, n).split(":")[-1] in attributes
        }
        self.required(path, shape, shape.members, present, lambda n, m: self.member_key_name(m, n))


class WireChecker:
    """Collects mismatches per call on `before-parse` and raises them on `after-call`."""

    def __init__(self):
        self._pending = threading.local()

    def attach(self, client) -> None:
        client.meta.events.register("before-parse", self._before_parse)
        client.meta.events.register("after-call", self._after_call)

    def _before_parse(self, operation_model, response_dict, **_):
        where = f"{operation_model.service_model.service_name}.{operation_model.name}"
        walk = _Walk(where)
        if response_dict["status_code"] < 300:
            try:
                self.check(walk, operation_model, response_dict["body"])
            except Exception as e:  # noqa: BLE001 - the checker must not hide the real response
                walk.problem("", f"could not be checked: {type(e).__name__}: {e}")
        self._pending.problems = [p for p in walk.problems if not _tolerated(p)]

    def _after_call(self, http_response, parsed, model, **_):
        problems = getattr(self._pending, "problems", [])
        self._pending.problems = []
        where = f"{model.service_model.service_name}.{model.name}"
        if http_response.status_code < 300:
            if not parsed.get("ResponseMetadata", {}).get("RequestId"):
                problems.append(f"{where}: botocore found no request id in the response")
        else:
            error = parsed.get("Error", {})
            if not error.get("Code"):
                problems.append(f"{where}: botocore parsed no error code from HTTP {http_response.status_code}: {http_response.content[:300]!r}")
            if not error.get("Message"):
                problems.append(f"{where}: botocore parsed no error message from HTTP {http_response.status_code}: {http_response.content[:300]!r}")
        if problems:
            raise WireMismatch("\n".join(problems))

    def check(self, walk: _Walk, operation_model, body: bytes) -> None:
        protocol = _protocol(operation_model)
        shape = operation_model.output_shape
        if protocol in ("json", "rest-json"):
            self.check_json(walk, protocol, shape, body)
        elif protocol in ("query", "ec2", "rest-xml"):
            self.check_xml(walk, protocol, operation_model.name, shape, body)
        else:
            walk.problem("", f"unexpected protocol {protocol}")

    @staticmethod
    def check_json(walk: _Walk, protocol: str, shape, body: bytes) -> None:
        if not body.strip():
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            walk.problem("", f"body is not JSON ({e}): {body[:200]!r}")
            return
        if shape is None:
            if doc != {}:
                walk.problem("", f"the operation has no output, but the body is {body[:200]!r}")
            return
        if protocol == "rest-json":
            payload = shape.serialization.get("payload")
            if payload:
                walk.json_value("", shape.members[payload], doc)
                return
            members = {n: m for n, m in shape.members.items() if not m.serialization.get("location")}
        else:
            members = shape.members
        if not isinstance(doc, dict):
            walk.problem("", f"expected a JSON object, got {type(doc).__name__}")
            return
        walk.json_struct("", shape, doc, members)

    @staticmethod
    def check_xml(walk: _Walk, protocol: str, op: str, shape, body: bytes) -> None:
        if protocol == "rest-xml" and shape is not None:
            payload = shape.serialization.get("payload")
            if payload and shape.members[payload].type_name in ("string", "blob"):
                return
        if not body.strip():
            if protocol in ("query", "ec2"):
                walk.problem("", "empty body: botocore cannot parse it")
            return
        try:
            root = ETree.fromstring(body)
        except ETree.ParseError as e:
            walk.problem("", f"body is not XML ({e}): {body[:200]!r}")
            return
        if protocol == "query":
            if _tag(root) != f"{op}Response":
                walk.problem("", f"root element is <{_tag(root)}>, expected <{op}Response>")
            children = {_tag(c): c for c in root}
            for tag in children:
                wrapper = shape.serialization.get("resultWrapper") if shape is not None else f"{op}Result"
                if tag not in ("ResponseMetadata", wrapper):
                    walk.problem(tag, "element not in the response envelope: botocore drops it")
            if "ResponseMetadata" not in children:
                walk.problem("", "no ResponseMetadata (botocore reads the request id from it)")
            if shape is not None:
                wrapper = shape.serialization.get("resultWrapper")
                if wrapper:
                    if wrapper not in children:
                        walk.problem("", f"no <{wrapper}> element: botocore fails with a KeyError")
                        return
                    walk.xml_struct(wrapper, shape, children[wrapper])
                else:
                    walk.xml_struct("", shape, root, extra=("ResponseMetadata",))
        elif protocol == "ec2":
            if _tag(root) != f"{op}Response":
                walk.problem("", f"root element is <{_tag(root)}>, expected <{op}Response>")
            if shape is not None:
                walk.xml_struct("", shape, root, extra=("requestId",))
            if root.find("{*}requestId") is None and root.find("requestId") is None:
                walk.problem("", "no <requestId> (botocore reads the request id from it)")
        else:
            if shape is None:
                return
            payload = shape.serialization.get("payload")
            if payload:
                member = shape.members[payload]
                expected = member.serialization.get("name", member.name)
                if _tag(root) != expected:
                    walk.problem("", f"payload root element is <{_tag(root)}>, expected <{expected}>")
                walk.xml_value(_tag(root), member, root)
            else:
                walk.xml_struct(_tag(root), shape, root)
