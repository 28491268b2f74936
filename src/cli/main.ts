// The `perceptd` command line. bin/perceptd.js awaits main() and uses its return value as
// the exit code, so nothing here calls process.exit: buffered stdout still drains and an
// embedding caller (the tests) can run main() in-process. (A second stop signal during
// `perceptd run`'s stop ends the process by that signal, src/daemon/signals.ts.)
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { register as registerBench } from "./commands/bench.ts";
import { register as registerData } from "./commands/data.ts";
import { register as registerDetect } from "./commands/detect.ts";
import { register as registerEval } from "./commands/eval.ts";
import { register as registerFinetune } from "./commands/finetune.ts";
import { register as registerKeys } from "./commands/keys.ts";
import { register as registerListen } from "./commands/listen.ts";
import { register as registerModels } from "./commands/models.ts";
import { register as registerPrune } from "./commands/prune.ts";
import { register as registerQuantize } from "./commands/quantize.ts";
import { register as registerSoak } from "./commands/soak.ts";
import { ExitError, register as registerRun } from "./commands/run.ts";

export const EXIT_OK = 0;
/** A run that failed on its input, models or environment. */
export const EXIT_ERROR = 1;
/** The command line itself was wrong (unknown option, missing argument). */
export const EXIT_USAGE = 2;

const DESCRIPTION =
  "Perception daemon for vehicle edge computers: reads frames from cameras and recordings " +
  "through GStreamer, runs pruned ONNX object detectors (NanoDet, CenterNet) with ONNX " +
  "Runtime on TensorRT, CUDA or the CPU, and publishes detections on a ZeroMQ bus with " +
  "Prometheus metrics. The commands below run the same pipeline offline on files, build " +
  "and check the shipped models, and benchmark them.";

function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8"));
    if (typeof pkg === "object" && pkg !== null && "version" in pkg && typeof pkg.version === "string") return pkg.version;
  } catch {
    // A damaged package.json must not take the whole CLI down; --version says so instead.
  }
  return "unknown";
}

export function buildProgram(): Command {
  const program = new Command("perceptd");
  program
    .description(DESCRIPTION)
    .version(packageVersion(), "-V, --version", "print the perceptd version")
    .helpOption("-h, --help", "show help for a command")
    .showHelpAfterError("(run with --help for usage)")
    // Set before the commands are added: subcommands copy these settings when created.
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
      outputError: (s, write) => write(`perceptd: ${s.replace(/^error: /, "")}`),
    });
  registerRun(program);
  registerModels(program);
  registerBench(program);
  registerDetect(program);
  registerEval(program);
  registerPrune(program);
  registerFinetune(program);
  registerQuantize(program);
  registerData(program);
  registerListen(program);
  registerKeys(program);
  registerSoak(program);
  return program;
}

function errorText(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** Runs the CLI on argv (without node and script) and returns the exit code; never throws. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    const program = buildProgram();
    await program.parseAsync([...argv], { from: "user" });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version arrive here too, with exit code 0; commander printed them already.
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    process.stderr.write(`perceptd: ${errorText(err)}\n`);
    return err instanceof ExitError ? err.exitCode : EXIT_ERROR;
  }
}
