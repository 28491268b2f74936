#!/usr/bin/python3
"""An ECU-side perceptd bus consumer in Python 3: the checks of an AUTOSAR E2E receiver.

Subscribes to every topic of perceptd's ZeroMQ PUB socket and, for each message, checks the
topic, the frame layout, the CRC-32C, schema_version and data_id (a failure: ERROR), then the
per-topic counter (OK / REPEATED / WRONG_SEQUENCE), and watches each topic for silence longer
than its staleness timeout (NO_NEW_DATA). Prints one JSON line per message, and one per
topic that goes stale. See README.md next to this file; the wire is proto/perceptd.proto.

Needs protoc and Debian's python3-protobuf and python3-zmq (scripts/setup.sh installs them);
the .proto is compiled into a temporary folder at start, so no generated code is kept.

Exit status: 0 done (--count reached, --timeout without --count, SIGINT/SIGTERM);
1 a CRC failure under --strict; 2 bad usage or setup (no protoc, .proto does not compile);
3 --timeout ran out before --count messages arrived.
"""

import argparse
import importlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

EXIT_OK, EXIT_CRC, EXIT_USAGE, EXIT_TIMEOUT = 0, 1, 2, 3


def fail(message):
    """A setup problem: says so on stderr and exits 2."""
    print("consumer: " + message, file=sys.stderr)
    raise SystemExit(EXIT_USAGE)


try:
    import zmq
except ImportError:  # depends on the machine
    fail("the zmq module is missing: apt-get install python3-zmq (or pip install pyzmq)")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO = os.path.normpath(os.path.join(HERE, "..", "..", "proto", "perceptd.proto"))
DEFAULT_ENDPOINT = "tcp://127.0.0.1:5555"

# The topic table of src/bus/topics.ts (and of the .proto's opening comment): wire name,
# message type, Header.data_id and the staleness timeout. The test compares this copy with
# the TypeScript one (--list-topics), so the two cannot drift apart unnoticed. Subscriptions
# are made in this order.
TOPICS = {
    "detections": {"message": "Detections", "data_id": 1, "stale_after_ms": 500},
    "health": {"message": "Health", "data_id": 2, "stale_after_ms": 300},
    "alerts": {"message": "Alerts", "data_id": 3, "stale_after_ms": 1000},
}

# The schema versions this code was written for. A new SchemaVersion value means a change an
# old reader cannot ignore, so it is rejected rather than guessed at, even if the .proto it
# compiled at start already knows the value.
READABLE_SCHEMA_VERSIONS = {1}

# ---------------------------------------------------------------------------------------
# CRC-32C (Castagnoli): reflected polynomial 0x82F63B78, init 0xFFFFFFFF, reflected in and
# out, final XOR 0xFFFFFFFF. Table-driven, one byte per step: frames are a few KiB at most.

_CRC32C_POLY = 0x82F63B78


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ _CRC32C_POLY if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data, crc=0):
    """CRC-32C of `data`; pass an earlier result as `crc` to continue over more bytes."""
    c = crc ^ 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        c = table[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


# The check value the .proto gives; a wrong table fails here, at start, not on every frame.
assert crc32c(b"123456789") == 0xE3069283, "CRC-32C implementation is broken"

# ---------------------------------------------------------------------------------------
# Frame checks (proto/perceptd.proto, "CRC"): frame 1 starts with
#   0x0A, varint L (1 to 5 bytes), 0x0D, the CRC (4 bytes, little-endian), rest of the Header
# and the CRC covers the whole frame with its own four bytes taken as zeros.


class FrameError(Exception):
    """A frame that fails its own checks: an E2E ERROR. `reason` says which check."""

    def __init__(self, reason, message):
        super().__init__(message)
        self.reason = reason


def header_span(frame):
    """(start, end, crc_at): where the serialized Header is and where its CRC bytes are."""
    if len(frame) == 0:
        raise FrameError("layout", "empty frame")
    if frame[0] != 0x0A:
        raise FrameError("layout", "frame starts with 0x%02x, not 0x0a (the header, field 1)" % frame[0])
    i, length, shift = 1, 0, 0
    while True:
        if i >= len(frame) or shift > 28:
            raise FrameError("layout", "header length is not a valid varint")
        b = frame[i]
        i += 1
        length |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            break
    if length < 5 or i + length > len(frame):
        raise FrameError("layout", "header length %d does not fit a %d-byte frame" % (length, len(frame)))
    if frame[i] != 0x0D:
        raise FrameError("layout", "header starts with 0x%02x, not 0x0d (crc32c, field 1)" % frame[i])
    return i, i + length, i + 1


def check_crc(frame):
    """Raises FrameError unless the frame's CRC-32C matches its bytes; returns the Header's span."""
    start, end, at = header_span(frame)
    stored = int.from_bytes(frame[at:at + 4], "little")
    computed = crc32c(frame[at + 4:], crc32c(b"\0\0\0\0", crc32c(frame[:at])))
    if stored != computed:
        raise FrameError("crc", "CRC-32C mismatch: the frame carries 0x%08x, its bytes give 0x%08x" % (stored, computed))
    return start, end


# ---------------------------------------------------------------------------------------
# E2E state per topic, as src/bus/client/e2e.ts: the first message is OK (no reference yet),
# then counter == last + 1 is OK, == last is REPEATED (not new data: the staleness clock keeps
# running), anything else WRONG_SEQUENCE (and becomes the reference). NO_NEW_DATA once per
# silence longer than the topic's timeout, counted from start until the first message.


class E2EMonitor:
    def __init__(self, stale_after_ms, now):
        self.stale_after_s = stale_after_ms / 1000.0
        self.now = now
        self.last_counter = None
        self.last_new_at = now()
        self.stale_reported = False

    def received(self, counter):
        last = self.last_counter
        if last is None or counter == last + 1:
            state, detail = "OK", None
        elif counter == last:
            return "REPEATED", "counter %d again" % counter
        elif counter > last:
            gap = counter - last - 1
            state, detail = "WRONG_SEQUENCE", "counter %d after %d: %d message%s missing" % (counter, last, gap, "" if gap == 1 else "s")
        else:
            state, detail = "WRONG_SEQUENCE", "counter %d after %d: went back (reordered, or the publisher restarted)" % (counter, last)
        self.last_counter = counter
        self.last_new_at = self.now()
        self.stale_reported = False
        return state, detail

    def poll(self):
        """A NO_NEW_DATA detail once when the topic has just gone silent too long; else None."""
        silent = self.now() - self.last_new_at
        if self.stale_reported or silent < self.stale_after_s:
            return None
        self.stale_reported = True
        return "no new data for %d ms (stale after %d ms)" % (round(silent * 1000), round(self.stale_after_s * 1000))

    def deadline(self):
        return None if self.stale_reported else self.last_new_at + self.stale_after_s


# ---------------------------------------------------------------------------------------
# Schema: protoc at run time, into a temporary folder


def compile_proto(proto_path, protoc, out_dir):
    """Runs protoc --python_out and imports the result; returns the perceptd_pb2 module."""
    exe = shutil.which(protoc)
    if exe is None:
        fail("%s not found: apt-get install protobuf-compiler (or pass --protoc)" % protoc)
    if not os.path.isfile(proto_path):
        fail("no .proto at %s (pass --proto)" % proto_path)
    proto_dir, proto_name = os.path.split(os.path.abspath(proto_path))
    run = subprocess.run([exe, "--proto_path=" + proto_dir, "--python_out=" + out_dir, proto_name], capture_output=True, text=True)
    if run.returncode != 0:
        fail("protoc failed on %s:\n%s" % (proto_path, run.stderr.strip()))
    sys.path.insert(0, out_dir)
    try:
        pb2 = importlib.import_module(os.path.splitext(proto_name)[0] + "_pb2")
    except ImportError as e:
        fail("cannot import the generated code (%s): apt-get install python3-protobuf" % e)
    finally:
        sys.path.remove(out_dir)
    check_schema(pb2)
    return pb2


def check_schema(pb2):
    """The layout the CRC check relies on, checked once against the compiled schema."""
    from google.protobuf.descriptor import FieldDescriptor

    crc = pb2.Header.DESCRIPTOR.fields_by_number.get(1)
    if crc is None or crc.name != "crc32c" or crc.type != FieldDescriptor.TYPE_FIXED32:
        fail('the .proto\'s Header must have "fixed32 crc32c = 1"')
    for topic, spec in TOPICS.items():
        msg = getattr(pb2, spec["message"], None)
        header = msg and msg.DESCRIPTOR.fields_by_number.get(1)
        if not header or header.name != "header" or header.message_type is not pb2.Header.DESCRIPTOR:
            fail('the .proto\'s %s (topic %s) must have "Header header = 1"' % (spec["message"], topic))
        if pb2.DataId.Value("DATA_ID_" + topic.upper()) != spec["data_id"]:
            fail("data_id of %s differs between the .proto and this consumer" % topic)


def enum_name(enum_type, value):
    """The .proto name of an enum value; the number for one from a newer schema."""
    try:
        return enum_type.Name(value)
    except ValueError:
        return value


def summarize(topic, msg, pb2):
    """A few fields of the payload, enough to see what is going on."""
    if topic == "detections":
        labels = {}
        for d in msg.detections:
            labels[d.label] = labels.get(d.label, 0) + 1
        return {
            "camera_id": msg.header.camera_id,
            "frame_seq": msg.header.frame_seq,
            "model": msg.model,
            "detections": len(msg.detections),
            "labels": labels,
            "best_score": round(msg.detections[0].score, 3) if msg.detections else None,
            # track_id, range_m, ttc_s, in_corridor: filled where the camera has a hazard assessment
            "tracked": sum(1 for d in msg.detections if d.track_id),
            "in_corridor": sum(1 for d in msg.detections if d.in_corridor),
        }
    if topic == "health":
        return {
            "state": enum_name(pb2.Health.State, msg.state),
            "reasons": len(msg.reasons),
            "fps": round(msg.fps, 1),
            "cameras": {c.camera_id: enum_name(pb2.CameraHealth.State, c.state) for c in msg.cameras},
        }
    return {
        "alerts": len(msg.alerts),
        "kinds": [enum_name(pb2.Alert.Kind, a.kind) for a in msg.alerts],
        "critical": sum(1 for a in msg.alerts if a.level == pb2.Alert.LEVEL_CRITICAL),
        # header.valid false (health not OK): show the alerts, do not act on them
        "valid": msg.header.valid,
    }


def check_message(topic, frame, pb2):
    """The checks a frame allows on its own; returns the decoded message or raises FrameError."""
    spec = TOPICS[topic]
    start, end = check_crc(frame)
    # The Header alone first: a message of another topic or schema version may not parse as
    # this topic's type, and "wrong topic" is the error worth reporting then.
    try:
        header = pb2.Header.FromString(frame[start:end])
    except Exception as e:  # google.protobuf.message.DecodeError, or a C++ backend's error
        raise FrameError("protobuf", "not a valid perceptd.v1.Header: %s" % e)
    if header.schema_version not in READABLE_SCHEMA_VERSIONS:
        raise FrameError("schema_version", "schema_version %d; this consumer reads %s" % (header.schema_version, sorted(READABLE_SCHEMA_VERSIONS)))
    if header.data_id != spec["data_id"]:
        owner = [t for t, s in TOPICS.items() if s["data_id"] == header.data_id]
        raise FrameError(
            "data_id",
            "data_id %d on topic %s (expected %d; %s)"
            % (header.data_id, topic, spec["data_id"], "it is %s's" % owner[0] if owner else "no known topic has it"),
        )
    try:
        return getattr(pb2, spec["message"]).FromString(frame)
    except Exception as e:
        raise FrameError("protobuf", "not a valid perceptd.v1.%s: %s" % (spec["message"], e))


# ---------------------------------------------------------------------------------------
# Main loop


def emit(line):
    print(json.dumps(line, separators=(",", ":")), flush=True)


def handle(frames, pb2, monitors):
    """The JSON line for one received multipart message."""
    topic_bytes = frames[0] if frames else b""
    topic = topic_bytes.decode("ascii", "replace")
    line = {"topic": topic, "counter": None, "crc_ok": None, "e2e": "ERROR"}
    if len(frames) != 2:
        line["detail"] = "%d frames, expected 2 (topic, payload)" % len(frames)
        return line
    if topic not in TOPICS:
        # Cannot happen with prefix subscriptions to the three names, unless a newer daemon
        # adds a topic whose name starts with one of them.
        line["detail"] = "unknown topic %r" % topic
        return line
    frame = frames[1]
    try:
        msg = check_message(topic, frame, pb2)
    except FrameError as e:
        line["crc_ok"] = e.reason not in ("layout", "crc")
        line["detail"] = "%s: %s" % (e.reason, e)
        return line
    line["crc_ok"] = True
    line["counter"] = msg.header.counter
    line["e2e"], detail = monitors[topic].received(msg.header.counter)
    if detail:
        line["detail"] = detail
    # Transport is fine; whether the content may be acted on is the publisher's verdict.
    line["valid"] = msg.header.valid
    line["summary"] = summarize(topic, msg, pb2)
    return line


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Subscribe to perceptd's bus and check every message like an E2E receiver: one JSON line per message.",
    )
    p.add_argument("endpoint_pos", nargs="?", metavar="ENDPOINT", help="ZeroMQ endpoint of the daemon's PUB socket (default %s)" % DEFAULT_ENDPOINT)
    p.add_argument("--endpoint", "-e", help="the same, as an option")
    p.add_argument("--count", "-n", type=int, default=0, help="exit 0 after N messages (0: no limit)")
    p.add_argument("--timeout", "-t", type=float, default=0.0, help="exit after S seconds; status 3 if --count was not reached by then (0: no limit)")
    p.add_argument("--strict", action="store_true", help="exit 1 at the first message whose CRC or layout check fails")
    p.add_argument("--proto", default=DEFAULT_PROTO, help="the schema to compile (default: the repository's proto/perceptd.proto)")
    p.add_argument("--protoc", default=os.environ.get("PROTOC", "protoc"), help="protoc to run (default $PROTOC, else protoc on PATH)")
    p.add_argument("--list-topics", action="store_true", help="print the topic table this consumer uses as JSON and exit")
    args = p.parse_args(argv)
    if args.endpoint_pos and args.endpoint and args.endpoint_pos != args.endpoint:
        p.error("two different endpoints given")
    args.endpoint = args.endpoint or args.endpoint_pos or DEFAULT_ENDPOINT
    if args.count < 0 or args.timeout < 0:
        p.error("--count and --timeout must be >= 0")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.list_topics:
        emit(TOPICS)
        return EXIT_OK

    # SIGTERM (systemd, a test harness) ends the loop the way Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(EXIT_OK))

    with tempfile.TemporaryDirectory(prefix="perceptd-pb2-") as out_dir:
        pb2 = compile_proto(args.proto, args.protoc, out_dir)

        ctx = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        try:
            sock.connect(args.endpoint)
        except zmq.ZMQError as e:
            fail("cannot connect to %s: %s" % (args.endpoint, e))
        for topic in TOPICS:
            sock.setsockopt(zmq.SUBSCRIBE, topic.encode("ascii"))

        now = time.monotonic
        monitors = {t: E2EMonitor(s["stale_after_ms"], now) for t, s in TOPICS.items()}
        end_at = now() + args.timeout if args.timeout > 0 else None
        received = 0
        try:
            while args.count == 0 or received < args.count:
                for topic, m in monitors.items():
                    detail = m.poll()
                    if detail:
                        emit({"topic": topic, "e2e": "NO_NEW_DATA", "detail": detail})
                if end_at is not None and now() >= end_at:
                    if args.count:
                        print("consumer: %d of %d messages within %g s" % (received, args.count, args.timeout), file=sys.stderr)
                        return EXIT_TIMEOUT
                    return EXIT_OK
                # Wake at the next staleness deadline or the end, whichever comes first.
                wake = [d for d in [end_at] + [m.deadline() for m in monitors.values()] if d is not None]
                wait_ms = max(0, int((min(wake) - now()) * 1000) + 1) if wake else None
                if not sock.poll(wait_ms):
                    continue
                line = handle(sock.recv_multipart(), pb2, monitors)
                received += 1
                emit(line)
                if args.strict and line["crc_ok"] is False:
                    print("consumer: --strict: %s" % line["detail"], file=sys.stderr)
                    return EXIT_CRC
            return EXIT_OK
        except KeyboardInterrupt:
            return EXIT_OK
        finally:
            sock.close(0)
            ctx.term()


if __name__ == "__main__":
    sys.exit(main())
