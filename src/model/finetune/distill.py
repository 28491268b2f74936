#!/usr/bin/env python3
"""Distillation fine-tuning of a pruned ONNX detector against its dense teacher.

Driven by `perceptd finetune` (src/model/finetune/run.ts), which writes the JSON config this
reads and renders the JSON lines it prints. PyTorch does the gradients; the ONNX graph itself
is the model: a small interpreter runs its nodes with torch ops, the student's float
initializers read by Conv nodes become nn.Parameters, and the trained values are written back
into the same graph (same nodes, same names), which then passes the ONNX checker.

Data: frame caches built by `perceptd data build` (frames.u8, count x H x W x 3 uint8 RGB,
fitted to the model input exactly as the daemon fits camera frames), read through numpy
memmaps; the driver has already checked that none holds test or validation data. Every batch
is augmented online (flip, scale and crop, colour jitter, grayscale, noise), the same picture
for teacher and student.

Loss per detection level: the KL divergence of the student's class scores from the teacher's
(binary cross-entropy with the teacher's scores as soft targets, less their own entropy), plus the KL divergence of each box side's distribution (GFL bins)
from the teacher's, weighted by the teacher's best class score at that anchor so that boxes
count where the teacher sees something. With a confidence weight, each class score's term
also counts more where either model sees an object. With a feature weight, the tensors the
heads read are matched too: each student channel against the teacher channel it was pruned
from (paired by correlation), in units of that channel's spread. The step kept is the one with the lowest
validation loss or, with keepBy "recall", the highest share of the teacher's confident scores
the student also gives.
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def emit(kind, **fields):
    print(json.dumps({"type": kind, **fields}), flush=True)


class Failure(Exception):
    pass


def attrs_of(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


ONNX_TO_TORCH = {1: torch.float32, 2: torch.uint8, 6: torch.int32, 7: torch.int64, 10: torch.float16, 11: torch.float64}


class OnnxModule(torch.nn.Module):
    """Runs an ONNX graph with torch ops; float initializers read by Conv are parameters."""

    def __init__(self, model, trainable):
        super().__init__()
        g = model.graph
        self.graph = g
        self.nodes = list(g.node)
        self.input_name = g.input[0].name
        self.output_names = [o.name for o in g.output]
        conv_weights = set()
        for n in self.nodes:
            if n.op_type == "Conv":
                conv_weights.update(i for i in n.input[1:] if i)
        self.params = torch.nn.ParameterDict()
        self.consts = {}
        self.param_keys = {}
        for init in g.initializer:
            arr = numpy_helper.to_array(init).copy()
            t = torch.from_numpy(arr)
            if trainable and init.name in conv_weights and arr.dtype == np.float32:
                key = "p%d" % len(self.param_keys)
                self.param_keys[init.name] = key
                self.params[key] = torch.nn.Parameter(t)
            else:
                self.consts[init.name] = t
        supported = set(OPS)
        unknown = sorted({n.op_type for n in self.nodes} - supported)
        if unknown:
            raise Failure("the graph has op types the training interpreter does not run: %s" % ", ".join(unknown))

    def value(self, env, name):
        if name in env:
            return env[name]
        key = self.param_keys.get(name)
        if key is not None:
            return self.params[key]
        t = self.consts.get(name)
        if t is None:
            raise Failure("tensor %s is neither computed nor an initializer" % name)
        return t

    def forward(self, x, keep=()):
        env = {self.input_name: x}
        for n in self.nodes:
            ins = [self.value(env, i) if i else None for i in n.input]
            outs = OPS[n.op_type](ins, attrs_of(n), x.shape[0])
            if not isinstance(outs, (list, tuple)):
                outs = [outs]
            for name, t in zip(n.output, outs):
                env[name] = t
        return {k: env[k] for k in list(self.output_names) + list(keep)}

    def trained_initializers(self):
        """A snapshot of the trained weights. On the CPU, .numpy() shares the parameter's memory, so
        without the copy a kept "best step" would follow every later optimizer step."""
        return {name: self.params[key].detach().cpu().numpy().copy() for name, key in self.param_keys.items()}


def _pads4(pads):
    # ONNX [top, left, bottom, right] -> F.pad's (left, right, top, bottom)
    return (pads[1], pads[3], pads[0], pads[2])


def op_conv(ins, a, _b):
    x, w = ins[0], ins[1]
    bias = ins[2] if len(ins) > 2 else None
    pads = a.get("pads", [0, 0, 0, 0])
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise Failure("Conv auto_pad is not supported by the training interpreter")
    if pads[0] != pads[2] or pads[1] != pads[3]:
        x = F.pad(x, _pads4(pads))
        padding = 0
    else:
        padding = (pads[0], pads[1])
    return F.conv2d(x, w, bias, stride=tuple(a.get("strides", [1, 1])), padding=padding, dilation=tuple(a.get("dilations", [1, 1])), groups=a.get("group", 1))


def op_maxpool(ins, a, _b):
    x = ins[0]
    pads = a.get("pads", [0, 0, 0, 0])
    if any(pads):
        x = F.pad(x, _pads4(pads), value=float("-inf"))
    return F.max_pool2d(x, tuple(a["kernel_shape"]), stride=tuple(a.get("strides", a["kernel_shape"])))


def op_pad(ins, a, _b):
    x = ins[0]
    pads = ins[1].tolist() if ins[1] is not None else a["pads"]
    value = float(ins[2].item()) if len(ins) > 2 and ins[2] is not None else 0.0
    if a.get("mode", b"constant") not in (b"constant", "constant"):
        raise Failure("Pad mode other than constant is not supported by the training interpreter")
    r = x.dim()
    spec = []
    for d in reversed(range(r)):
        spec += [pads[d], pads[d + r]]
    return F.pad(x, tuple(spec), value=value)


def op_reshape(ins, _a, batch):
    shape = [int(v) for v in ins[1].tolist()]
    # graphs exported for batch 1 spell the batch as 1; training runs batches
    if shape and shape[0] == 1 and batch != 1:
        shape[0] = batch
    shape = [ins[0].shape[i] if v == 0 else v for i, v in enumerate(shape)]
    return ins[0].reshape(shape)


def op_resize(ins, a, _b):
    x = ins[0]
    mode = a.get("mode", b"nearest")
    mode = mode.decode() if isinstance(mode, bytes) else mode
    ctm = a.get("coordinate_transformation_mode", b"half_pixel")
    ctm = ctm.decode() if isinstance(ctm, bytes) else ctm
    sizes = ins[3] if len(ins) > 3 and ins[3] is not None and ins[3].numel() > 0 else None
    if sizes is not None:
        size = [int(v) for v in sizes.tolist()[2:]]
    else:
        scales = ins[2].tolist()
        size = [int(math.floor(x.shape[2 + i] * scales[2 + i])) for i in range(2)]
    if mode == "linear":
        if ctm not in ("half_pixel", "pytorch_half_pixel", "align_corners"):
            raise Failure("Resize coordinate_transformation_mode %s is not supported by the training interpreter" % ctm)
        return F.interpolate(x, size=size, mode="bilinear", align_corners=(ctm == "align_corners"))
    if mode == "nearest":
        return F.interpolate(x, size=size, mode="nearest")
    raise Failure("Resize mode %s is not supported by the training interpreter" % mode)


def op_split(ins, a, _b):
    axis = a.get("axis", 0)
    sizes = ins[1].tolist() if len(ins) > 1 and ins[1] is not None else a.get("split")
    if sizes is None:
        raise Failure("Split without sizes is not supported by the training interpreter")
    return list(torch.split(ins[0], [int(s) for s in sizes], dim=axis))


def op_cast(ins, a, _b):
    dtype = ONNX_TO_TORCH.get(a["to"])
    if dtype is None:
        raise Failure("Cast to ONNX type %d is not supported by the training interpreter" % a["to"])
    # A float input stands for the uint8 image here (augmentation works in float): keep it float.
    if dtype == torch.float32 or ins[0].is_floating_point():
        return ins[0].float()
    return ins[0].to(dtype)


OPS = {
    "Conv": op_conv,
    "LeakyRelu": lambda ins, a, _b: F.leaky_relu(ins[0], a.get("alpha", 0.01)),
    "Relu": lambda ins, a, _b: F.relu(ins[0]),
    "Sigmoid": lambda ins, a, _b: torch.sigmoid(ins[0]),
    "Concat": lambda ins, a, _b: torch.cat([t for t in ins if t is not None], dim=a["axis"]),
    "Reshape": op_reshape,
    "Transpose": lambda ins, a, _b: ins[0].permute(*a["perm"]),
    "Resize": op_resize,
    "Add": lambda ins, a, _b: ins[0] + ins[1],
    "Sub": lambda ins, a, _b: ins[0] - ins[1],
    "Mul": lambda ins, a, _b: ins[0] * ins[1],
    "Split": op_split,
    "Pad": op_pad,
    "MaxPool": op_maxpool,
    "Cast": op_cast,
    "Gather": lambda ins, a, _b: torch.index_select(ins[0], a.get("axis", 0), ins[1].long().reshape(-1)).reshape(
        list(ins[0].shape[: a.get("axis", 0) % ins[0].dim()]) + list(ins[1].shape) + list(ins[0].shape[a.get("axis", 0) % ins[0].dim() + 1 :])
    ),
}


class Frames:
    """Frame caches as one indexable set of uint8 NHWC RGB pictures."""

    def __init__(self, dirs):
        self.parts = []
        shape = None
        for d in dirs:
            with open(os.path.join(d, "index.json")) as f:
                index = json.load(f)
            hw = (index["height"], index["width"])
            if shape is not None and hw != shape:
                raise Failure("%s: frames are %dx%d, the other caches %dx%d" % (d, hw[1], hw[0], shape[1], shape[0]))
            shape = hw
            count = index["count"]
            path = os.path.join(d, "frames.u8")
            expected = count * hw[0] * hw[1] * 3
            if os.path.getsize(path) != expected:
                raise Failure("%s: %d bytes, the index says %d frames of %dx%d (%d bytes)" % (path, os.path.getsize(path), count, hw[1], hw[0], expected))
            self.parts.append(np.memmap(path, dtype=np.uint8, mode="r", shape=(count, hw[0], hw[1], 3)))
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])
        self.count = int(self.offsets[-1])
        self.height, self.width = shape

    def batch(self, idx):
        out = np.empty((len(idx), self.height, self.width, 3), dtype=np.uint8)
        for k, i in enumerate(idx):
            p = int(np.searchsorted(self.offsets, i, side="right") - 1)
            out[k] = self.parts[p][i - self.offsets[p]]
        return torch.from_numpy(out)


def augment(img, gen, aug):
    """img: B x H x W x 3 float in [0, 255]; one random draw per picture."""
    b, h, w, _ = img.shape
    x = img.permute(0, 3, 1, 2)  # NCHW for the image ops
    out = []
    for k in range(b):
        t = x[k : k + 1]
        u = lambda: float(torch.rand((), generator=gen))
        if aug.get("flip", True) and u() < 0.5:
            t = t.flip(3)
        lo = aug.get("minScale", 0.6)
        if lo < 1 and u() < 0.8:
            s = lo + (1 - lo) * u()
            ch, cw = max(8, int(h * s)), max(8, int(w * s))
            y0, x0 = int((h - ch) * u()), int((w - cw) * u())
            t = F.interpolate(t[:, :, y0 : y0 + ch, x0 : x0 + cw], size=(h, w), mode="bilinear", align_corners=False)
        zo = aug.get("zoomOut", 1.0)
        if zo < 1 and u() < 0.3:
            # smaller on black borders, as the daemon letterboxes: far and small objects
            s = zo + (1 - zo) * u()
            ch, cw = max(8, int(h * s)), max(8, int(w * s))
            y0, x0 = int((h - ch) * u()), int((w - cw) * u())
            canvas = torch.zeros_like(t)
            canvas[:, :, y0 : y0 + ch, x0 : x0 + cw] = F.interpolate(t, size=(ch, cw), mode="bilinear", align_corners=False)
            t = canvas
        j = aug.get("jitter", 0.3)
        if j > 0:
            t = t * (1 + j * (2 * u() - 1))  # brightness
            m = t.mean()
            t = (t - m) * (1 + j * (2 * u() - 1)) + m  # contrast
            grey = (0.299 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3])
            t = (t - grey) * (1 + j * (2 * u() - 1)) + grey  # saturation
        if u() < aug.get("grayscale", 0.1):
            grey = 0.299 * t[:, 0:1] + 0.587 * t[:, 1:2] + 0.114 * t[:, 2:3]
            t = grey.expand(-1, 3, -1, -1)
        if u() < aug.get("blur", 0.1):
            t = F.avg_pool2d(F.pad(t, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        sigma = aug.get("noise", 4.0)
        if sigma > 0 and u() < 0.5:
            t = t + sigma * torch.randn(t.shape, generator=gen)
        out.append(t.clamp(0, 255))
    return torch.cat(out).permute(0, 2, 3, 1)


def model_input(img, spec):
    """img: B x H x W x 3 float RGB in [0, 255] -> what the graph's input takes."""
    if spec["layout"] == "NHWC":
        return img  # uint8 graphs cast and normalise inside
    x = img
    norm = spec.get("normalization")
    if norm:
        # mean and std are listed per RGB channel (as toModelInputData applies them), before the reorder
        x = (x - torch.tensor(norm["mean"], device=x.device)) / torch.tensor(norm["std"], device=x.device)
    if spec["colorOrder"] == "bgr":
        x = x.flip(3)
    return x.permute(0, 3, 1, 2).contiguous()


def distill_loss(s_out, t_out, heads, weights, confidence=0.0):
    cls_total = 0.0
    box_total = 0.0
    for level in heads:
        ts = t_out[level["scores"]].clamp(0, 1)
        ss = s_out[level["scores"]].clamp(1e-6, 1 - 1e-6)
        # cross-entropy less the teacher's own entropy: the KL divergence per score, 0 when they agree
        tc = ts.clamp(1e-6, 1 - 1e-6)
        # Every score of every anchor counts once; with `confidence` > 0 a score counts
        # 1 + confidence x (the larger of the two scores) times, so that the few anchors where
        # either model sees an object are not outweighed by the many background ones: a
        # missed object (teacher high, student low) and an invented one (the reverse) cost more.
        score_w = 1 + confidence * torch.maximum(ts, ss.detach()) if confidence > 0 else None
        kl_scores = F.binary_cross_entropy(ss, ts, weight=score_w, reduction="sum") - F.binary_cross_entropy(tc, ts, weight=score_w, reduction="sum")
        cls_total = cls_total + kl_scores / ts.shape[0]
        bins = level["bins"]
        tb = t_out[level["boxes"]]
        sb = s_out[level["boxes"]]
        shape = tb.shape[:-1] + (tb.shape[-1] // bins, bins)
        tp = F.softmax(tb.reshape(shape), dim=-1)
        slog = F.log_softmax(sb.reshape(shape), dim=-1)
        kl = (tp * (torch.log(tp.clamp_min(1e-12)) - slog)).sum(-1).sum(-1)  # per anchor
        w = ts.max(dim=-1).values  # the teacher's best class score at the anchor
        box_total = box_total + (kl * w).sum() / tb.shape[0]
    cls_total = cls_total * weights["cls"]
    box_total = box_total * weights["box"]
    return cls_total + box_total, cls_total, box_total


def confident_hits(s_out, t_out, heads):
    """(teacher scores >= 0.5 that the student scores >= 0.3, teacher scores >= 0.5): the
    bar's recall line counted per anchor and class instead of per decoded box."""
    hit = 0
    confident = 0
    for level in heads:
        ts = t_out[level["scores"]]
        ss = s_out[level["scores"]]
        sure = ts >= 0.5
        confident += int(sure.sum())
        hit += int((sure & (ss >= 0.3)).sum())
    return hit, confident


# Ops a detection head's tower is made of: from a score output back through these to the tensor the head reads.
HEAD_TOWER_OPS = ("Conv", "LeakyRelu", "Relu")


def head_inputs(model, heads):
    """The tensors the detection heads read (NanoDet: each FPN level's output), one per level:
    from the level's score output back past reshapes to its last Conv, then back through the
    head's Convs and activations to the first tensor that something else made or that other
    nodes read too."""
    producer = {o: n for n in model.graph.node for o in n.output}
    readers = {}
    for n in model.graph.node:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    graph_inputs = {i.name for i in model.graph.input}
    found = []
    for level in heads:
        n = producer.get(level["scores"])
        while n is not None and n.op_type not in HEAD_TOWER_OPS:
            n = producer.get(n.input[0])
        name = None
        while n is not None and n.op_type in HEAD_TOWER_OPS:
            name = n.input[0]
            n = producer.get(name)
            if readers.get(name, 0) > 1:
                break
        if name is None or name in graph_inputs or n is None:
            raise Failure("feature distillation: found no head input behind output %s (the head should read a feature map the network computes)" % level["scores"])
        if name not in found:
            found.append(name)
    return found


def match_channels(s, t):
    """For features s (B x Cs x H x W) of the student and t (B x Ct x H x W) of the teacher, the
    teacher channel each student channel stands for: structured pruning keeps a subset of the
    channels and recovery refits each toward its original response, so each kept channel
    correlates best with the one it was. Greedy one-to-one on the correlation matrix; returns the
    indices, the correlation of each pair, and the spread (standard deviation) of each paired
    teacher channel."""
    cs, ct = s.shape[1], t.shape[1]
    if s.shape[2:] != t.shape[2:] or cs > ct:
        raise Failure("feature distillation: the student's head input is %s, the teacher's %s: not a pruned copy" % (tuple(s.shape[1:]), tuple(t.shape[1:])))
    a = s.transpose(0, 1).reshape(cs, -1).double()
    b = t.transpose(0, 1).reshape(ct, -1).double()
    a = (a - a.mean(1, keepdim=True)) / a.std(1, unbiased=False, keepdim=True).clamp_min(1e-9)
    spread = b.std(1, unbiased=False)
    b = (b - b.mean(1, keepdim=True)) / spread.unsqueeze(1).clamp_min(1e-9)
    corr = (a @ b.T) / a.shape[1]
    index = [-1] * cs
    paired = [0.0] * cs
    used = set()
    for flat in torch.argsort(corr.reshape(-1), descending=True).tolist():
        i, j = divmod(flat, ct)
        if index[i] >= 0 or j in used:
            continue
        index[i] = j
        paired[i] = float(corr[i, j])
        used.add(j)
        if len(used) == cs:
            break
    index = torch.tensor(index, dtype=torch.long)
    return index, paired, spread[index].float()


def feature_loss(s_out, t_out, features):
    """Per head input: the student's channels against the teacher's they stand for, each in units
    of the teacher channel's spread; squared error averaged over channels, summed over positions
    (one per anchor, as the score loss is summed), averaged over the batch."""
    total = 0.0
    for f in features:
        s = s_out[f["name"]]
        t = t_out[f["name"]].index_select(1, f["index"])
        err = ((s - t) / f["scale"].view(1, -1, 1, 1)) ** 2
        total = total + err.mean(1).sum() / s.shape[0]
    return total


def atomic_save(obj, path):
    tmp = path + ".tmp%d" % os.getpid()
    torch.save(obj, tmp)
    os.replace(tmp, path)


def write_onnx(model_proto, trained, out):
    inits = {i.name: i for i in model_proto.graph.initializer}
    for name, arr in trained.items():
        old = inits[name]
        new = numpy_helper.from_array(arr.astype(np.float32).reshape(numpy_helper.to_array(old).shape), name)
        old.CopyFrom(new)
    tmp = out + ".tmp%d" % os.getpid()
    onnx.save(model_proto, tmp)
    try:
        onnx.checker.check_model(tmp, full_check=True)
    except Exception as e:  # the checker's own error types vary by onnx version
        os.remove(tmp)
        raise Failure("the trained model fails the ONNX checker (not written): %s" % e)
    os.replace(tmp, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("config", help="JSON written by perceptd finetune")
    cfg_path = ap.parse_args().config
    with open(cfg_path) as f:
        cfg = json.load(f)
    try:
        run(cfg)
    except Failure as e:
        emit("error", message=str(e))
        sys.exit(2)


def run(cfg):
    seed = int(cfg["seed"])
    torch.manual_seed(seed)
    threads = cfg.get("threads")
    if threads:
        torch.set_num_threads(int(threads))
    device = torch.device(cfg.get("device", "cpu"))
    if device.type == "cuda" and not torch.cuda.is_available():
        raise Failure("--device cuda: this PyTorch sees no CUDA device")

    student_proto = onnx.load(cfg["student"])
    teacher = OnnxModule(onnx.load(cfg["teacher"]), trainable=False).to(device).eval()
    student = OnnxModule(student_proto, trainable=True).to(device)
    for name, t in list(student.consts.items()):
        student.consts[name] = t.to(device)
    for name, t in list(teacher.consts.items()):
        teacher.consts[name] = t.to(device)
    for p in teacher.parameters():
        p.requires_grad_(False)

    train = Frames(cfg["train"])
    val = Frames(cfg["validation"]) if cfg.get("validation") else None
    heads = cfg["heads"]
    weights = cfg.get("lossWeights", {"cls": 1.0, "box": 1.0})
    confidence = float(cfg.get("confidenceWeight") or 0.0)
    feature_weight = float(cfg.get("featureWeight") or 0.0)
    keep_by = cfg.get("keepBy") or "loss"
    if keep_by not in ("loss", "recall"):
        raise Failure("keepBy must be loss or recall, got %s" % keep_by)
    warmup = int(cfg.get("warmup") or 0)
    batch = int(cfg["batch"])
    steps_per_epoch = max(1, train.count // batch)
    total = int(cfg["steps"]) if cfg.get("steps") else int(cfg["epochs"]) * steps_per_epoch
    aug = cfg.get("augment", {})
    opt = torch.optim.Adam(student.parameters(), lr=float(cfg["lr"]))
    # a linear warm-up first: full-size Adam steps on a pretrained student disturb what it
    # knows before the moments are estimated (the validation loss rose in the first steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup if warmup > 0 else 1.0) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total))
    )
    gen = torch.Generator().manual_seed(seed)
    step = 0
    history = []
    best = None
    val_start = None
    ckpt = cfg["checkpoint"]
    if cfg.get("resume") and os.path.exists(ckpt):
        state = torch.load(ckpt)
        if state["total"] != total or state["student"] != cfg["studentSha256"]:
            raise Failure("%s: the checkpoint is of another run (student or step count differ); drop --resume or remove it" % ckpt)
        student.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        gen.set_state(state["generator"])
        torch.set_rng_state(state["rng"])
        step = state["step"]
        history = state["history"]
        best = state["best"]
        val_start = state["valStart"]
        emit("resumed", step=step, steps=total)

    features = []
    if feature_weight > 0:
        # matched on the first training frames as they are (no augmentation): the same pairs on a resumed run
        names = head_inputs(student_proto, heads)
        with torch.no_grad():
            img = train.batch(range(min(train.count, 32))).float().to(device)
            t = teacher(model_input(img, cfg["teacherInput"]), keep=names)
            s = student(model_input(img, cfg["studentInput"]), keep=names)
        for name in names:
            index, paired, spread = match_channels(s[name], t[name])
            scale = spread.clamp_min(1e-6)
            features.append({"name": name, "index": index.to(device), "scale": scale.to(device)})
            emit("features", tensor=name, student=int(s[name].shape[1]), teacher=int(t[name].shape[1]), meanCorrelation=sum(paired) / len(paired), minCorrelation=min(paired))
    keep = [f["name"] for f in features]

    def validate():
        """(loss, recall of the teacher's confident scores) on the validation frames."""
        if val is None:
            return None, None
        student.eval()
        tot = 0.0
        hit = confident = 0
        with torch.no_grad():
            for i in range(0, val.count, batch):
                img = val.batch(range(i, min(val.count, i + batch))).float().to(device)
                t = teacher(model_input(img, cfg["teacherInput"]))
                s = student(model_input(img, cfg["studentInput"]))
                tot += float(distill_loss(s, t, heads, weights, confidence)[0]) * img.shape[0]
                h, c = confident_hits(s, t, heads)
                hit += h
                confident += c
        student.train()
        return tot / val.count, (hit / confident if confident else None)

    def better(v, r):
        """Whether a validation result beats the best so far by the chosen criterion."""
        if v is None or best["val"] is None:
            return True
        if keep_by == "recall" and r is not None and best.get("recall") is not None and r != best["recall"]:
            return r > best["recall"]
        return v < best["val"]

    if best is None:
        v0, r0 = validate()
        best = {"step": 0, "val": v0, "recall": r0, "weights": student.trained_initializers()}
        val_start = v0
        emit("validation", step=0, loss=v0, recall=r0)
    order = None
    t0 = time.time()
    done_at_start = step
    eval_every = int(cfg.get("evalEvery") or steps_per_epoch)
    while step < total:
        epoch = step // steps_per_epoch
        pos = step % steps_per_epoch
        if order is None or pos == 0:
            # the epoch's order from its own seed, so a resumed run sees the same batches
            order = torch.randperm(train.count, generator=torch.Generator().manual_seed(seed * 1000003 + epoch)).tolist()
        idx = order[pos * batch : (pos + 1) * batch]
        img = augment(train.batch(idx).float(), gen, aug).to(device)
        with torch.no_grad():
            t = teacher(model_input(img, cfg["teacherInput"]), keep=keep)
        s = student(model_input(img, cfg["studentInput"]), keep=keep)
        loss, lc, lb = distill_loss(s, t, heads, weights, confidence)
        lf = feature_weight * feature_loss(s, t, features) if features else 0.0
        loss = loss + lf
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        history.append([step, float(loss), float(lc), float(lb), float(lf)])
        rate = (time.time() - t0) / (step - done_at_start)
        emit("progress", epoch=epoch + 1, epochs=math.ceil(total / steps_per_epoch), step=step, steps=total, loss=float(loss), cls=float(lc), box=float(lb), feat=float(lf), eta=rate * (total - step))
        if step % eval_every == 0 or step == total:
            v, r = validate()
            emit("validation", step=step, loss=v, recall=r)
            if better(v, r):
                best = {"step": step, "val": v, "recall": r, "weights": student.trained_initializers()}
            atomic_save(
                {
                    "total": total,
                    "student": cfg["studentSha256"],
                    "model": student.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict(),
                    "generator": gen.get_state(),
                    "rng": torch.get_rng_state(),
                    "step": step,
                    "history": history,
                    "best": best,
                    "valStart": val_start,
                },
                ckpt,
            )
            emit("checkpoint", step=step, path=ckpt)
    # the weights of the best validation step (the last ones without validation)
    final = best["weights"] if val is not None else student.trained_initializers()
    write_onnx(student_proto, final, cfg["out"])
    first = history[: max(1, len(history) // 20)]
    last = history[-max(1, len(history) // 20) :]
    emit(
        "done",
        out=cfg["out"],
        steps=total,
        keptStep=best["step"] if val is not None else total,
        validationLoss={"start": val_start, "best": best["val"]},
        validationRecall=best.get("recall"),
        trainLoss={"first": sum(h[1] for h in first) / len(first) if history else None, "last": sum(h[1] for h in last) / len(last) if history else None},
        seconds=time.time() - t0,
    )


if __name__ == "__main__":
    main()
