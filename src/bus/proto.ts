// The bus schema, loaded from proto/perceptd.proto when this module is first imported.
// Reflection rather than generated code: the .proto stays the only description of the
// wire, and protobufjs builds its encoders and decoders from it at load time, so no
// generated file can drift from it. A .proto that fails to parse, or that lacks a message
// the topic table names, fails the import, loudly, before anything is published.
import { fileURLToPath } from "node:url";
import protobuf from "protobufjs";
import type { Enum, Type } from "protobufjs";
import { TOPIC_NAMES, TOPICS, type TopicName } from "./topics.ts";

/** Absolute path of the schema file, for messages and for consumers that want to ship it. */
export const PROTO_FILE = fileURLToPath(new URL("../../proto/perceptd.proto", import.meta.url));

export const PROTO_PACKAGE = "perceptd.v1";

const root = protobuf.loadSync(PROTO_FILE);
root.resolveAll();

export function lookupMessage(name: string): Type {
  return root.lookupType(name.startsWith(".") || name.startsWith(`${PROTO_PACKAGE}.`) ? name : `${PROTO_PACKAGE}.${name}`);
}

export function lookupEnum(name: string): Enum {
  return root.lookupEnum(name.startsWith(`${PROTO_PACKAGE}.`) ? name : `${PROTO_PACKAGE}.${name}`);
}

export const HeaderType = lookupMessage("Header");

/** The message type of each topic, as the topic table names it. */
export const TOPIC_TYPES: Readonly<Record<TopicName, Type>> = Object.fromEntries(TOPIC_NAMES.map((t) => [t, lookupMessage(TOPICS[t].message)])) as Record<TopicName, Type>;

/** What this build writes into Header.schema_version: the highest SchemaVersion value in the .proto. */
export const SCHEMA_VERSION: number = Math.max(...Object.values(lookupEnum("SchemaVersion").values));

/** Every schema_version this build can read. Only the current one until a version 2 exists. */
export const READABLE_SCHEMA_VERSIONS: ReadonlySet<number> = new Set([SCHEMA_VERSION]);

// The wire layout the CRC relies on (proto/perceptd.proto, "CRC"): checked here because a
// renumbered field would silently break every consumer's CRC check.
for (const t of TOPIC_NAMES) {
  const h = TOPIC_TYPES[t].fieldsById[1];
  if (!h || h.name !== "header" || h.resolvedType !== HeaderType) throw new Error(`${PROTO_FILE}: ${TOPICS[t].message} must have "Header header = 1"`);
}
if (HeaderType.fieldsById[1]?.name !== "crc32c" || HeaderType.fieldsById[1].type !== "fixed32") throw new Error(`${PROTO_FILE}: Header must have "fixed32 crc32c = 1"`);
