"""Kernel-side recorder: remembers every Keras model, History and matplotlib figure the
notebook creates, and writes them out as data when the runner asks for the harvest.

It runs inside the untrusted kernel, so nothing here is trusted by the grader: the runner
validates what it writes (JSON against a schema, PNG and ``.keras`` signatures, sizes). A
student who tampers with it can only spoil their own harvest.

Loaded as an IPython extension by the project kernel when ``AUTOGRADER_HARVEST_DIR`` is set.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

HARVEST_ENV = "AUTOGRADER_HARVEST_DIR"
MAX_LINE_POINTS = 10_000


class _Recorder:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.cell = 0
        # id(obj) -> {"obj": obj, "kind": ..., "bindings": [(name, cell)]}
        self.objects: dict[int, dict[str, Any]] = {}
        self.current: dict[str, int] = {}
        self.figures: dict[int, dict[str, Any]] = {}

    # -- events -------------------------------------------------------------------------
    def post_execute(self) -> None:
        self.cell += 1
        try:
            self._scan_namespace()
            self._capture_figures()
        except Exception as err:  # a broken capture must not break the student's cell
            print(f"[autograder] recorder: {err!r}", file=sys.__stderr__)

    def _kind(self, value: Any) -> str | None:
        keras = sys.modules.get("keras")
        if keras is None:
            return None
        if isinstance(value, keras.Model):
            return "model"
        if isinstance(value, keras.callbacks.History):
            return "history"
        return None

    def _scan_namespace(self) -> None:
        for name, value in list(self.shell.user_ns.items()):
            if name.startswith("_"):
                continue
            kind = self._kind(value)
            if kind is None or self.current.get(name) == id(value):
                continue
            self.current[name] = id(value)
            entry = self.objects.setdefault(id(value), {"obj": value, "kind": kind, "bindings": []})
            entry["bindings"].append((name, self.cell))

    def _capture_figures(self) -> None:
        helpers = sys.modules.get("matplotlib._pylab_helpers")
        if helpers is None:
            return
        for manager in helpers.Gcf.get_all_fig_managers():
            fig = manager.canvas.figure
            if id(fig) not in self.figures or fig.stale:
                self.capture(fig)

    def capture(self, fig: Any) -> None:
        """Snapshot a figure's metadata and pixels (before it is shown and closed)."""
        meta = _figure_meta(fig, self.cell + 1)
        known = self.figures.get(id(fig))
        if known is not None and known["meta"]["axes"] == meta["axes"]:
            return
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=80)
        self.figures[id(fig)] = {"meta": meta, "png": buffer.getvalue()}

    # -- harvest ------------------------------------------------------------------------
    def harvest(self, out: Path) -> None:
        self.post_execute()
        for sub in ("models", "histories", "figures"):
            (out / sub).mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {
            "models": [],
            "histories": [],
            "figures": [],
            "errors": [],
            "gpus": _gpus(),
        }
        used: set[str] = set()
        for entry in self.objects.values():
            name, cell = entry["bindings"][-1]
            current = self.current.get(name) == id(entry["obj"])
            key = _unique(name if current else f"{name}@cell{cell}", used)
            names = [n for n, _ in entry["bindings"]]
            try:
                if entry["kind"] == "model":
                    manifest["models"].append(_save_model(entry["obj"], out, key, names, cell))
                else:
                    manifest["histories"].append(_save_history(entry["obj"], out, key, names, cell))
            except Exception as err:
                manifest["errors"].append(f"{entry['kind']} {key}: {type(err).__name__}: {err}")
        for number, record in enumerate(self.figures.values(), start=1):
            key = f"figure-{number}"
            try:
                (out / "figures" / f"{key}.png").write_bytes(record["png"])
                meta = dict(record["meta"], key=key, file=f"figures/{key}.png")
                manifest["figures"].append(meta)
            except Exception as err:
                manifest["errors"].append(f"figure {key}: {type(err).__name__}: {err}")
        (out / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False), "utf-8")


def _unique(name: str, used: set[str]) -> str:
    safe = re.sub(r"[^A-Za-z0-9_@.-]", "_", name)[:100] or "unnamed"
    key, n = safe, 1
    while key in used:
        n += 1
        key = f"{safe}~{n}"
    used.add(key)
    return key


def _save_model(model: Any, out: Path, key: str, names: list[str], cell: int) -> dict[str, Any]:
    lines: list[str] = []
    model.summary(print_fn=lambda line, *a, **k: lines.append(str(line)))
    path = out / "models" / f"{key}.keras"
    started = time.perf_counter()
    model.save(path)
    return {
        "key": key,
        "names": names,
        "cell": cell,
        "file": f"models/{key}.keras",
        "summary": "\n".join(lines),
        "built": bool(model.built),
        "save_s": round(time.perf_counter() - started, 3),
    }


def _save_history(history: Any, out: Path, key: str, names: list[str], cell: int) -> dict[str, Any]:
    data = {
        "history": {k: [float(v) for v in vs] for k, vs in dict(history.history).items()},
        "epoch": [int(e) for e in getattr(history, "epoch", [])],
        "params": {
            k: v
            for k, v in dict(getattr(history, "params", {}) or {}).items()
            if isinstance(v, int | float | str | bool) or v is None
        },
    }
    path = out / "histories" / f"{key}.json"
    path.write_text(json.dumps(data), "utf-8")
    return {"key": key, "names": names, "cell": cell, "file": f"histories/{key}.json"}


def _figure_meta(fig: Any, cell: int) -> dict[str, Any]:
    axes = []
    for ax in fig.get_axes():
        legend = ax.get_legend()
        lines = []
        for line in ax.get_lines():
            x = [float(v) for v in list(line.get_xdata())[:MAX_LINE_POINTS]]
            y = [float(v) for v in list(line.get_ydata())[:MAX_LINE_POINTS]]
            lines.append({"label": str(line.get_label()), "x": x, "y": y})
        axes.append(
            {
                "title": ax.get_title(),
                "xlabel": ax.get_xlabel(),
                "ylabel": ax.get_ylabel(),
                "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
                "lines": lines,
            }
        )
    suptitle = fig._suptitle.get_text() if getattr(fig, "_suptitle", None) else ""
    return {"cell": cell, "suptitle": suptitle, "axes": axes}


def _gpus() -> list[str]:
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return []
    try:
        return [d.name for d in tf.config.list_physical_devices("GPU")]
    except Exception:
        return []


_RECORDER: _Recorder | None = None


def load_ipython_extension(shell: Any) -> None:
    """Register the recorder on the kernel's shell (IPython extension entry point)."""
    global _RECORDER
    if _RECORDER is None:
        _RECORDER = _Recorder(shell)
        shell.events.register("post_execute", _RECORDER.post_execute)
        _watch_figure_close(_RECORDER)
        gpu_memory_growth()


def _watch_figure_close(recorder: _Recorder) -> None:
    """Capture every figure just before matplotlib forgets it: ``plt.show()`` in the inline
    backend and ``plt.close()`` both end in ``Gcf.destroy`` / ``Gcf.destroy_all``."""
    from matplotlib import _pylab_helpers

    gcf = _pylab_helpers.Gcf
    destroy, destroy_all = gcf.destroy.__func__, gcf.destroy_all.__func__  # type: ignore[attr-defined]

    def capture_manager(manager: Any) -> None:
        try:
            recorder.capture(manager.canvas.figure)
        except Exception as err:
            print(f"[autograder] recorder: {err!r}", file=sys.__stderr__)

    def on_destroy(cls: Any, num: Any) -> Any:
        manager = num if hasattr(num, "canvas") else cls.figs.get(num)
        if manager is not None:
            capture_manager(manager)
        return destroy(cls, num)

    def on_destroy_all(cls: Any) -> Any:
        for manager in list(cls.figs.values()):
            capture_manager(manager)
        return destroy_all(cls)

    gcf.destroy = classmethod(on_destroy)  # type: ignore[method-assign,assignment]
    gcf.destroy_all = classmethod(on_destroy_all)  # type: ignore[method-assign,assignment]


def gpu_memory_growth() -> None:
    """Ask TensorFlow to grow GPU memory on demand so that runs can share a card."""
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")


def harvest() -> None:
    """Write the harvest into ``$AUTOGRADER_HARVEST_DIR`` (called by the runner at the end)."""
    if _RECORDER is None:
        raise RuntimeError("the autograder recorder is not loaded in this kernel")
    _RECORDER.harvest(Path(os.environ[HARVEST_ENV]))
