// `perceptd keys`: makes a CURVE key pair for the bus, for the daemon (bus.curve.serverSecretKeyFile)
// or for a subscriber (its public key goes into bus.curve.allowedClientKeys). Writes czmq /
// pyzmq certificate files: NAME.key (public) and NAME.key_secret (mode 0600), each atomically.
import { mkdir } from "node:fs/promises";
import type { Command } from "commander";
import { capability } from "zeromq";
import { writeKeyPair } from "../../bus/curve.ts";

interface KeysFlags {
  outDir: string;
  name: string;
  force?: boolean;
}

export function register(program: Command): void {
  program
    .command("keys")
    .description("make a CURVE key pair for the bus: NAME.key (public, to share) and NAME.key_secret (secret, mode 0600)")
    .option("-o, --out-dir <dir>", "folder to write the two files in (created if missing, mode 0700)", ".")
    .option("--name <name>", "file name without extension, e.g. server or a subscriber's name", "perceptd")
    .option("--force", "replace an existing pair of that name")
    .addHelpText(
      "after",
      "\nThe daemon: bus.curve.serverSecretKeyFile = NAME.key_secret; give NAME.key (or the key printed) to subscribers.\n" +
        "A subscriber: put its printed public key into the daemon's bus.curve.allowedClientKeys, then\n" +
        "  perceptd listen --curve-server-key server.key --curve-key-file NAME.key_secret",
    )
    .action(async (flags: KeysFlags) => {
      if (!capability.curve) throw new Error("this build of zeromq has no CURVE support (libsodium)");
      await mkdir(flags.outDir, { recursive: true, mode: 0o700 });
      const w = await writeKeyPair(flags.outDir, flags.name, { force: flags.force ?? false });
      process.stdout.write(`public key: ${w.publicKey}\n` + `wrote ${w.secretFile} (secret, mode 0600: keep it on this machine)\n` + `wrote ${w.publicFile} (public: share it)\n`);
    });
}
