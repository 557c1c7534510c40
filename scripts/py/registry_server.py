#!/usr/bin/env python3
"""Minimal Confluent-Schema-Registry-compatible HTTP server for tests.

Standard library only. Binds 127.0.0.1, prints one line ``listening PORT`` on
stdout once it accepts connections, logs one line per request on stderr, and
serves until SIGTERM/SIGINT. State is in memory only.

Usage:
    registry_server.py [--port 0] [--basic USER:PASS] [--bearer TOKEN]
                       [--incompatible SUBJECT]...

Endpoints (Confluent REST shapes, Content-Type
application/vnd.schemaregistry.v1+json, errors as
{"error_code": N, "message": "..."}):
    POST /subjects/{subject}/versions        register -> {"id": N}
    POST /subjects/{subject}                 look up  -> {"subject","id","version","schema"}
    GET  /schemas/ids/{id}                   -> {"schema": "..."}
    GET  /subjects
    GET  /subjects/{subject}/versions
    GET  /subjects/{subject}/versions/{version|latest|-1}
    GET  /                                   -> {}

Schema ids are global (shared across subjects) and start at 1; the same schema
(JSON-normalized for AVRO/JSON, same type and references) always gets the same
id. Registering under a subject named with --incompatible always fails with 409.
With --basic or --bearer every request must carry a matching Authorization
header (either one is accepted when both are given); otherwise 401/40101.
"""

import argparse
import base64
import binascii
import hmac
import json
import signal
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class HttpError(Exception):
    def __init__(self, status, error_code, message):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


class Registry:
    """In-memory subjects/versions/ids, guarded by one lock."""

    def __init__(self, incompatible):
        self.lock = threading.Lock()
        self.incompatible = set(incompatible)
        self.schemas = {}  # id -> {"schema", "schemaType", "references"}
        self.ids_by_key = {}  # normalized key -> id
        self.subjects = {}  # subject -> list of ids; version = index + 1

    @staticmethod
    def _parse(body):
        if not isinstance(body, dict):
            raise HttpError(422, 42201, "Invalid schema: request body must be a JSON object")
        schema = body.get("schema")
        if not isinstance(schema, str):
            raise HttpError(422, 42201, "Invalid schema: field \"schema\" must be a string")
        schema_type = body.get("schemaType") or "AVRO"
        if not isinstance(schema_type, str):
            raise HttpError(422, 42201, "Invalid schema: schemaType must be a string")
        schema_type = schema_type.upper()
        if schema_type not in ("AVRO", "JSON", "PROTOBUF"):
            raise HttpError(422, 42201, f"Invalid schema: unknown schemaType {schema_type}")
        references = body.get("references") or []
        if not isinstance(references, list):
            raise HttpError(422, 42201, "Invalid schema: references must be a list")
        if schema_type in ("AVRO", "JSON"):
            try:
                normalized = json.dumps(json.loads(schema), sort_keys=True, separators=(",", ":"))
            except ValueError as e:
                raise HttpError(422, 42201, f"Invalid schema: {e}") from None
        else:
            normalized = schema.strip()
        key = (schema_type, normalized, json.dumps(references, sort_keys=True))
        return key, {"schema": schema, "schemaType": schema_type, "references": references}

    @staticmethod
    def _schema_fields(entry):
        out = {"schema": entry["schema"]}
        if entry["schemaType"] != "AVRO":
            out["schemaType"] = entry["schemaType"]
        if entry["references"]:
            out["references"] = entry["references"]
        return out

    def register(self, subject, body):
        key, entry = self._parse(body)
        if subject in self.incompatible:
            raise HttpError(
                409,
                409,
                f"Schema being registered is incompatible with an earlier schema for subject \"{subject}\"",
            )
        with self.lock:
            schema_id = self.ids_by_key.get(key)
            if schema_id is None:
                schema_id = len(self.schemas) + 1
                self.schemas[schema_id] = entry
                self.ids_by_key[key] = schema_id
            versions = self.subjects.setdefault(subject, [])
            if schema_id not in versions:
                versions.append(schema_id)
        return {"id": schema_id}

    def lookup(self, subject, body):
        key, _ = self._parse(body)
        with self.lock:
            versions = self.subjects.get(subject)
            if versions is None:
                raise HttpError(404, 40401, f"Subject '{subject}' not found.")
            schema_id = self.ids_by_key.get(key)
            if schema_id is None or schema_id not in versions:
                raise HttpError(404, 40403, "Schema not found")
            return self._version_body(subject, versions.index(schema_id) + 1, schema_id)

    def _version_body(self, subject, version, schema_id):
        out = {"subject": subject, "version": version, "id": schema_id}
        out.update(self._schema_fields(self.schemas[schema_id]))
        return out

    def schema_by_id(self, raw_id):
        try:
            schema_id = int(raw_id)
        except ValueError:
            raise HttpError(404, 40403, "Schema not found") from None
        with self.lock:
            entry = self.schemas.get(schema_id)
            if entry is None:
                raise HttpError(404, 40403, "Schema not found")
            return self._schema_fields(entry)

    def list_subjects(self):
        with self.lock:
            return sorted(self.subjects)

    def list_versions(self, subject):
        with self.lock:
            versions = self.subjects.get(subject)
            if versions is None:
                raise HttpError(404, 40401, f"Subject '{subject}' not found.")
            return list(range(1, len(versions) + 1))

    def get_version(self, subject, raw_version):
        with self.lock:
            versions = self.subjects.get(subject)
            if versions is None:
                raise HttpError(404, 40401, f"Subject '{subject}' not found.")
            if raw_version in ("latest", "-1"):
                version = len(versions)
            else:
                try:
                    version = int(raw_version)
                except ValueError:
                    raise HttpError(
                        422,
                        42202,
                        "The specified version is not a valid version id. "
                        "Allowed values are between [1, 2^31-1] and the string \"latest\"",
                    ) from None
                if version < 1:
                    raise HttpError(422, 42202, "The specified version is not a valid version id.")
            if version > len(versions):
                raise HttpError(404, 40402, f"Version {raw_version} not found.")
            return self._version_body(subject, version, versions[version - 1])


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "registry-server"
    # Set on the class by main().
    registry = None
    basic = None  # expected "Basic ..." header value
    bearer = None  # expected "Bearer ..." header value

    def version_string(self):
        return self.server_version

    def log_message(self, fmt, *args):
        sys.stderr.write("%s - %s\n" % (self.address_string(), fmt % args))
        sys.stderr.flush()

    def _send(self, status, payload, extra_headers=()):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra_headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, err):
        headers = []
        if err.status == 401:
            headers.append(("WWW-Authenticate", "Basic realm=\"SchemaRegistry\""))
        self._send(err.status, {"error_code": err.error_code, "message": err.message}, headers)

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            # Not supported: we could not find the end of the body, so close.
            self.close_connection = True
            raise HttpError(411, 411, "Length Required: chunked bodies are not supported")
        raw_len = self.headers.get("Content-Length")
        if not raw_len:
            return b""
        try:
            length = int(raw_len)
        except ValueError:
            self.close_connection = True
            raise HttpError(400, 400, "Bad Content-Length") from None
        if length < 0:
            self.close_connection = True
            raise HttpError(400, 400, "Bad Content-Length")
        return self.rfile.read(length)

    def _check_auth(self):
        if self.basic is None and self.bearer is None:
            return
        got = (self.headers.get("Authorization") or "").strip()
        for expected in (self.basic, self.bearer):
            if expected is not None and hmac.compare_digest(got.encode(), expected.encode()):
                return
        if self.basic is not None and got[:6].lower() == "basic ":
            # Accept any equivalent base64 spelling (e.g. without padding).
            token = got[6:].strip()
            try:
                decoded = base64.b64decode(token + "=" * (-len(token) % 4), validate=True)
            except (binascii.Error, ValueError):
                decoded = None
            if decoded is not None and hmac.compare_digest(decoded, self.server.basic_userpass):
                return
        raise HttpError(401, 40101, "Unauthorized")

    def _handle(self):
        try:
            body_bytes = self._read_body()
            self._check_auth()
            path = urlsplit(self.path).path
            parts = [unquote(p) for p in path.strip("/").split("/")] if path.strip("/") else []
            status, payload = self._route(self.command, parts, body_bytes)
            self._send(status, payload)
        except HttpError as err:
            self._error(err)
        except Exception as e:  # noqa: BLE001 - report, keep serving
            self.log_message("internal error: %r", e)
            self._error(HttpError(500, 50001, f"Internal server error: {e}"))

    def _json_body(self, body_bytes):
        try:
            return json.loads(body_bytes or b"null")
        except ValueError as e:
            raise HttpError(400, 400, f"Unrecognized JSON body: {e}") from None

    def _route(self, method, parts, body_bytes):
        reg = self.registry
        n = len(parts)
        if n == 0:
            if method in ("GET", "HEAD"):
                return 200, {}
        elif parts[0] == "subjects":
            if n == 1 and method in ("GET", "HEAD"):
                return 200, reg.list_subjects()
            if n == 2 and method == "POST":
                return 200, reg.lookup(parts[1], self._json_body(body_bytes))
            if n == 3 and parts[2] == "versions":
                if method == "POST":
                    return 200, reg.register(parts[1], self._json_body(body_bytes))
                if method in ("GET", "HEAD"):
                    return 200, reg.list_versions(parts[1])
            if n == 4 and parts[2] == "versions" and method in ("GET", "HEAD"):
                return 200, reg.get_version(parts[1], parts[3])
        elif parts[0] == "schemas" and n == 3 and parts[1] == "ids" and method in ("GET", "HEAD"):
            return 200, reg.schema_by_id(parts[2])
        raise HttpError(404, 404, "HTTP 404 Not Found")

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = pick a free one)")
    ap.add_argument("--basic", metavar="USER:PASS", help="require HTTP basic auth with these credentials")
    ap.add_argument("--bearer", metavar="TOKEN", help="require 'Authorization: Bearer TOKEN'")
    ap.add_argument(
        "--incompatible",
        metavar="SUBJECT",
        action="append",
        default=[],
        help="registering under SUBJECT fails with 409 (repeatable)",
    )
    args = ap.parse_args()
    if args.basic is not None and ":" not in args.basic:
        ap.error("--basic must be USER:PASS")

    Handler.registry = Registry(args.incompatible)
    if args.basic is not None:
        Handler.basic = "Basic " + base64.b64encode(args.basic.encode()).decode()
    if args.bearer is not None:
        Handler.bearer = "Bearer " + args.bearer

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    server.basic_userpass = (args.basic or "").encode()

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
