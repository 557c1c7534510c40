#!/usr/bin/env python3
"""Decode Avro data with independent libraries (fastavro, confluent-kafka).

Prints every decoded record as one JSON line on stdout, then a final line
{"decoded": N, "failed": M}. Exits 0 when M == 0 and N > 0; otherwise exits 1
and prints the first failure's reason on stderr.

Usage:
    avro_check.py ocf FILE
        Avro object container file (null, deflate, snappy if installed,
        zstandard). Writer schema name(s) and codec go to stderr.
    avro_check.py raw --schema FILE.avsc RECORDS
        RECORDS holds length-prefixed records (4-byte big-endian length, then
        that many bytes); each is a bare Avro binary datum decoded with
        fastavro.schemaless_reader. Bytes left over after a datum are a failure.
    avro_check.py framed --registry URL [--basic USER:PASS] [--bearer TOKEN] RECORDS
        Same length-prefixed file; each record is in Confluent wire format
        (magic 0, 4-byte big-endian schema id, datum) and is decoded with
        confluent_kafka's AvroDeserializer backed by a SchemaRegistryClient.
        Magic byte and leftover bytes are checked independently as well.

See requirements.txt beside this file for the Python packages.
"""

import argparse
import io
import json
import struct
import sys


class Result:
    def __init__(self):
        self.decoded = 0
        self.failed = 0
        self.first_failure = None

    def ok(self, record):
        sys.stdout.write(json.dumps(record, default=str) + "\n")
        self.decoded += 1

    def fail(self, reason):
        self.failed += 1
        if self.first_failure is None:
            self.first_failure = reason

    def finish(self):
        sys.stdout.write(json.dumps({"decoded": self.decoded, "failed": self.failed}) + "\n")
        sys.stdout.flush()
        if self.failed == 0 and self.decoded > 0:
            return 0
        reason = self.first_failure or "no records decoded"
        print(f"avro_check: FAIL: {reason}", file=sys.stderr)
        return 1


def describe(exc):
    text = str(exc) or ("unexpected end of data" if isinstance(exc, EOFError) else repr(exc))
    return f"{type(exc).__name__}: {text}"


def read_length_prefixed(path, result):
    """Yield (index, bytes) for each record; a truncated tail is one failure."""
    with open(path, "rb") as f:
        data = f.read()
    pos = 0
    index = 0
    while pos < len(data):
        if len(data) - pos < 4:
            result.fail(f"record {index}: truncated length prefix at byte {pos} ({len(data) - pos} bytes left)")
            return
        (length,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if len(data) - pos < length:
            result.fail(f"record {index}: length {length} at byte {pos - 4} runs past end of file ({len(data) - pos} bytes left)")
            return
        yield index, data[pos : pos + length]
        pos += length
        index += 1


def schema_names(schema):
    """Names of the named top-level type(s) of a parsed/JSON schema."""
    if isinstance(schema, list):
        return [n for s in schema for n in schema_names(s)]
    if isinstance(schema, dict):
        name = schema.get("name")
        if name:
            ns = schema.get("namespace")
            return [name if "." in name or not ns else f"{ns}.{name}"]
        return [str(schema.get("type"))]
    return [str(schema)]


def cmd_ocf(args, result):
    import fastavro

    try:
        f = open(args.file, "rb")
    except OSError as e:
        result.fail(f"cannot open {args.file}: {describe(e)}")
        return
    with f:
        try:
            reader = fastavro.reader(f)
        except Exception as e:  # noqa: BLE001
            result.fail(f"bad container header: {describe(e)}")
            return
        print(
            f"writer schema: {', '.join(schema_names(reader.writer_schema))}; codec: {reader.codec}",
            file=sys.stderr,
        )
        index = 0
        while True:
            try:
                record = next(reader)
            except StopIteration:
                break
            except Exception as e:  # noqa: BLE001 - a corrupt block ends the stream
                result.fail(f"record {index}: {describe(e)}")
                break
            result.ok(record)
            index += 1


def decode_datum(datum, parsed_schema):
    """schemaless_reader plus a check that the whole datum was consumed."""
    import fastavro

    bio = io.BytesIO(datum)
    record = fastavro.schemaless_reader(bio, parsed_schema, None)
    left = len(datum) - bio.tell()
    if left:
        raise ValueError(f"{left} byte(s) left over after decoding {bio.tell()} of {len(datum)}")
    return record


def cmd_raw(args, result):
    from fastavro.schema import load_schema

    try:
        parsed = load_schema(args.schema)
    except Exception as e:  # noqa: BLE001
        result.fail(f"cannot load schema {args.schema}: {describe(e)}")
        return
    print(f"schema: {', '.join(schema_names(parsed))}", file=sys.stderr)
    for index, datum in read_length_prefixed(args.records, result):
        try:
            record = decode_datum(datum, parsed)
        except Exception as e:  # noqa: BLE001
            result.fail(f"record {index}: {describe(e)}")
            continue
        result.ok(record)


def make_registry_client(args):
    from confluent_kafka.schema_registry import SchemaRegistryClient

    conf = {"url": args.registry, "max.retries": 1, "retries.wait.ms": 200, "timeout": 10}
    if args.basic is not None:
        conf["basic.auth.user.info"] = args.basic
    if args.bearer is not None:
        # Static bearer tokens (confluent-kafka >= 2.6): sends
        # "Authorization: Bearer TOKEN" plus a target-sr-cluster header, and
        # requires a logical cluster name even when the server ignores it.
        conf.update(
            {
                "bearer.auth.credentials.source": "STATIC_TOKEN",
                "bearer.auth.token": args.bearer,
                "bearer.auth.logical.cluster": "lsrc-test",
            }
        )
    try:
        return SchemaRegistryClient(conf)
    except ValueError as e:
        if args.bearer is not None:
            raise SystemExit(f"avro_check: installed confluent-kafka does not support static bearer tokens: {e}")
        raise


def cmd_framed(args, result):
    import fastavro
    from confluent_kafka.schema_registry.avro import AvroDeserializer
    from confluent_kafka.schema_registry.error import SchemaRegistryError
    from confluent_kafka.serialization import MessageField, SerializationContext

    client = make_registry_client(args)
    # TOPIC strategy: no association lookup against the registry; the subject
    # ("t-value") only matters for use.latest.version, which stays off, so the
    # writer schema is always fetched by the id in the record.
    deserializer = AvroDeserializer(client, conf={"subject.name.strategy.type": "TOPIC"})
    ctx = SerializationContext("t", MessageField.VALUE)
    parsed_by_id = {}
    ids_seen = set()

    for index, data in read_length_prefixed(args.records, result):
        if len(data) < 5:
            result.fail(f"record {index}: {len(data)} bytes, shorter than the 5-byte wire-format header")
            continue
        if data[0] != 0:
            result.fail(f"record {index}: magic byte is {data[0]}, expected 0")
            continue
        schema_id = int.from_bytes(data[1:5], "big")
        try:
            record = deserializer(data, ctx)
        except SchemaRegistryError as e:
            result.fail(f"record {index}: registry error for schema id {schema_id}: {describe(e)}")
            if e.http_status_code in (401, 403) or e.http_status_code >= 500:
                break  # every further record would fail the same way
            continue
        except Exception as e:  # noqa: BLE001
            if type(e).__module__.startswith(("httpx", "httpcore")):
                result.fail(f"record {index}: cannot reach registry: {describe(e)}")
                break
            result.fail(f"record {index}: {describe(e)}")
            continue
        # AvroDeserializer ignores trailing bytes; check them with fastavro
        # against the same writer schema (already cached by the client).
        try:
            if schema_id not in parsed_by_id:
                registered = client.get_schema(schema_id, subject_name="t-value")
                parsed_by_id[schema_id] = (
                    None if registered.references else fastavro.parse_schema(json.loads(registered.schema_str))
                )
            parsed = parsed_by_id[schema_id]
            if parsed is not None:
                decode_datum(data[5:], parsed)
        except Exception as e:  # noqa: BLE001
            result.fail(f"record {index} (schema id {schema_id}): {describe(e)}")
            continue
        ids_seen.add(schema_id)
        result.ok(record)
    if ids_seen:
        print(f"schema ids: {sorted(ids_seen)}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="mode", required=True)

    p = sub.add_parser("ocf", help="Avro object container file")
    p.add_argument("file")
    p.set_defaults(func=cmd_ocf)

    p = sub.add_parser("raw", help="length-prefixed bare Avro datums")
    p.add_argument("--schema", required=True, help="writer schema (.avsc)")
    p.add_argument("records")
    p.set_defaults(func=cmd_raw)

    p = sub.add_parser("framed", help="length-prefixed Confluent wire-format records")
    p.add_argument("--registry", required=True, help="schema registry URL")
    p.add_argument("--basic", metavar="USER:PASS")
    p.add_argument("--bearer", metavar="TOKEN")
    p.add_argument("records")
    p.set_defaults(func=cmd_framed)

    args = ap.parse_args()
    result = Result()
    try:
        args.func(args, result)
    except OSError as e:
        result.fail(describe(e))
    sys.exit(result.finish())


if __name__ == "__main__":
    main()
