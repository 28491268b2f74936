// `perceptd finetune STUDENT --teacher DENSE --calibration DATA... --out FILE`: distillation
// fine-tuning of a pruned model (src/model/finetune/). Progress on stderr: epoch, step, loss,
// time left; a checkpoint after every validation, picked up again with --resume.
import { InvalidArgumentError, type Command } from "commander";
import { nonNegativeInt, nonNegativeNumber, positiveInt, positiveNumber } from "../option-parsers.ts";

function clock(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return `${h > 0 ? `${h}:${String(m).padStart(2, "0")}` : String(m)}:${String(s % 60).padStart(2, "0")}`;
}

interface FinetuneFlags {
  teacher: string;
  calibration?: string[];
  validation?: string[];
  out: string;
  steps?: number;
  epochs?: number;
  batch?: number;
  lr?: number;
  seed?: number;
  evalEvery?: number;
  confidenceWeight?: number;
  featureWeight?: number;
  keepBy?: "loss" | "recall";
  warmup?: number;
  augment?: string[];
  device: "cpu" | "cuda";
  threads?: number;
  checkpoint?: string;
  resume?: boolean;
  manifest?: string;
}

export function register(program: Command): void {
  program
    .command("finetune")
    .description(
      "fine-tune a pruned model by distillation from its dense teacher on unlabeled calibration data (class scores and box " +
        "distributions of every level), with online augmentation; PyTorch runs the ONNX graph and the trained weights are " +
        "written back into the same graph (checked, written atomically). Needs python3-torch (scripts/setup.sh --training)",
    )
    .argument("<student>", "pruned model: manifest name or ONNX file (e.g. a `perceptd prune --recover --ridge auto` output)")
    .requiredOption("--teacher <model>", "dense model whose outputs are learned (e.g. nanodet-u8)")
    .requiredOption("-o, --out <file.onnx>", "where to write the fine-tuned model")
    .option("--calibration <data>", "training data, repeatable (corpus:calibration, vtest:calibration, folders, clips with ranges); test and validation data are refused", (v: string, prev: string[] = []) => [...prev, v])
    .option("--validation <data>", "data the kept step is chosen on, repeatable (default corpus:validation)", (v: string, prev: string[] = []) => [...prev, v])
    .option("--steps <n>", "optimizer steps (or --epochs)", positiveInt)
    .option("--epochs <n>", "passes over the training frames (default 1 when --steps is not given)", positiveInt)
    .option("--batch <n>", "pictures per step (default 8)", positiveInt)
    .option("--lr <x>", "Adam learning rate, cosine decay to 0 (default 3e-4)", positiveNumber)
    .option("--seed <n>", "seed of the batch order and augmentation (default 1)", positiveInt)
    .option("--eval-every <n>", "validation loss and checkpoint every n steps (default once per epoch)", positiveInt)
    .option("--confidence-weight <x>", "a class score's loss counts 1 + x times the larger of the two scores, so anchors with an object outweigh background (default 20; 0 weighs every score alike)", nonNegativeNumber)
    .option("--feature-weight <x>", "also match the head inputs (each FPN level) to the teacher channels they were pruned from, with this weight (default 0: outputs only)", nonNegativeNumber)
    .option("--keep-by <loss|recall>", "kept step: highest validation recall of the teacher's scores >= 0.5 (student >= 0.3; ties: lower loss), or lowest validation loss (default recall)", (v) => {
      if (v !== "loss" && v !== "recall") throw new InvalidArgumentError(`expected loss or recall, got "${v}"`);
      return v;
    })
    .option("--augment <key=value>", "change one augmentation setting, repeatable: flip=true|false, minScale, zoomOut, jitter, grayscale, blur, noise (defaults in docs/fine-tuning.md)", (v: string, prev: string[] = []) => [...prev, v])
    .option("--warmup <steps>", "linear learning-rate warm-up before the cosine decay (default 20)", nonNegativeInt)
    .option("--device <cpu|cuda>", "where PyTorch trains", (v) => {
      if (v !== "cpu" && v !== "cuda") throw new InvalidArgumentError(`expected cpu or cuda, got "${v}"`);
      return v;
    }, "cpu")
    .option("--threads <n>", "PyTorch CPU threads (default: its own choice)", positiveInt)
    .option("--checkpoint <file>", "checkpoint file (default <out>.ckpt)")
    .option("--resume", "continue from the checkpoint of an interrupted run with the same student and steps")
    .option("--manifest <path>", "model manifest")
    .action(async (student: string, flags: FinetuneFlags) => {
      const { runFinetune } = await import("../../model/finetune/finetune.ts");
      const { parseAugment } = await import("../../model/finetune/distill.ts");
      const augment = parseAugment(flags.augment ?? []);
      const tty = process.stderr.isTTY === true;
      let last = 0;
      const result = await runFinetune({
        student,
        teacher: flags.teacher,
        calibration: flags.calibration ?? [],
        validation: flags.validation,
        out: flags.out,
        steps: flags.steps,
        epochs: flags.epochs,
        batch: flags.batch,
        lr: flags.lr,
        seed: flags.seed,
        evalEvery: flags.evalEvery,
        confidenceWeight: flags.confidenceWeight,
        featureWeight: flags.featureWeight,
        keepBy: flags.keepBy,
        warmup: flags.warmup,
        augment,
        device: flags.device,
        threads: flags.threads,
        checkpoint: flags.checkpoint,
        resume: flags.resume,
        manifestPath: flags.manifest,
        onProgress: (t) => process.stderr.write(`${t}\n`),
        onEvent: (e) => {
          if (e.type === "progress") {
            const line = `finetune: epoch ${e.epoch}/${e.epochs} step ${e.step}/${e.steps} loss ${e.loss.toFixed(4)} (scores ${e.cls.toFixed(4)}, boxes ${e.box.toFixed(4)}${e.feat > 0 ? `, features ${e.feat.toFixed(4)}` : ""}) ${clock(e.eta)} left`;
            // a live line on a terminal; in a log, one line every 30 s
            if (tty) process.stderr.write(`\r\x1b[2K${line}`);
            else if (Date.now() - last > 30_000 || e.step === e.steps) {
              last = Date.now();
              process.stderr.write(`${line}\n`);
            }
          } else {
            if (tty) process.stderr.write("\r\x1b[2K");
            if (e.type === "validation") process.stderr.write(`finetune: step ${e.step}: validation loss ${e.loss === null ? "-" : e.loss.toFixed(4)}, recall ${e.recall === null ? "-" : e.recall.toFixed(3)}\n`);
            else if (e.type === "features") {
              process.stderr.write(`finetune: features ${e.tensor}: ${e.student} of ${e.teacher} channels matched, correlation mean ${e.meanCorrelation.toFixed(3)}, least ${e.minCorrelation.toFixed(3)}\n`);
            } else if (e.type === "checkpoint") process.stderr.write(`finetune: checkpoint ${e.path} (step ${e.step})\n`);
            else process.stderr.write(`finetune: resumed at step ${e.step}/${e.steps}\n`);
          }
        },
      });
      process.stderr.write(
        `finetune: wrote ${result.out}: ${result.steps} steps in ${clock(result.seconds)}, weights of step ${result.keptStep}; ` +
          `validation loss ${result.validationLoss.start?.toFixed(4) ?? "-"} -> ${result.validationLoss.best?.toFixed(4) ?? "-"}, recall ${result.validationRecall?.toFixed(3) ?? "-"}\n`,
      );
    });
}
