"""The agent's commands of the ``sense`` command line (typer); :mod:`sense_cli` is the entry point that
adds ``sense eval`` and ``sense demt`` (``python -m sense_cli``).

``sense run INPUT --request TEXT`` processes one file; ``sense chat`` holds a conversation;
``sense devices search|list|own`` looks up and registers devices; ``sense feedback up|down``
rates the last result; ``sense separate INPUT`` writes the stems; ``sense demt ...`` trains and
evaluates the learned device transfer. Errors print one line (no traceback) and exit non-zero.
"""

from __future__ import annotations

import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console


app = typer.Typer(help="SENSE: plain-language requests in, processed audio and reasoning out.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
devices_app = typer.Typer(help="Look up devices in the frequency-response store; register the ones you own.",
                          no_args_is_help=True)
app.add_typer(devices_app, name="devices")
console = Console(highlight=False)
err = Console(stderr=True, highlight=False, soft_wrap=True)

UserOpt = Annotated[str, typer.Option("--user", "-u", help="Whose preferences and devices to use.")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Planner model name (qwen2.5-coder-1.5b, qwen2.5-coder-0.5b) or a .gguf path.")]
UrlOpt = Annotated[Optional[str], typer.Option("--llm-url", help="Use an OpenAI-compatible server at this base URL instead of the local model.")]
NoLLMOpt = Annotated[bool, typer.Option("--no-llm", help="Skip the LLM; parse requests with the rule-based parser.")]
FRDirOpt = Annotated[Optional[Path], typer.Option("--fr-dir", help="A folder of AutoEq-format CSVs (e.g. a full AutoEq checkout) to use as the device store instead of the data set's fr/autoeq.")]


@contextmanager
def one_line_errors():
    """The CLI's one error boundary: every :class:`tools.errors.SenseError` (and a refused write) becomes
    one ``error:`` line on stderr and exit code 1; Ctrl-C exits with 130."""
    from rich.markup import escape

    from tools.errors import SenseError, one_line

    try:
        yield
    except (SenseError, PermissionError, IsADirectoryError) as exc:
        err.print(f"[red]error:[/red] {escape(one_line(exc))}", markup=True)
        raise typer.Exit(1)
    except OSError as exc:  # a file-system refusal (name too long, disk full, read-only folder)
        if exc.filename is None:
            raise
        err.print(f"[red]error:[/red] {escape(one_line(f'{exc.filename}: {exc.strerror or exc}'))}", markup=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        raise typer.Exit(130)


def _engine(model, llm_url, no_llm, fr_dir, variants: bool):
    from agent.engine import Engine
    from agent.runtime import Runtime

    with err.status("Loading knowledge and the planner model…"):
        return Engine(Runtime.load(model=model, llm_url=llm_url, use_llm=not no_llm, fr_root=fr_dir), variants=variants)


def _turn(engine, thread: str, request: str, input_path, user: str, output=None, listening=None):
    from agent.graph import FIRST_STEP

    with err.status(FIRST_STEP) as status:
        return engine.turn(thread, request, input_path, user=user, output_path=output, listening_device=listening,
                           progress=lambda _fraction, text: status.update(text))


def _print_result(outcome) -> None:
    from rich.markup import escape  # file names may hold [brackets]

    if outcome.status == "processed":
        console.print(f"[bold]{outcome.summary}[/bold]")
        if outcome.details:
            console.print(outcome.details)
        for kind, path in outcome.outputs.items():
            console.print(f"  {kind:6s} {escape(str(path))}")
        for option in (outcome.variants.options if outcome.variants else []):
            console.print(f"  {option.letter:6s} {escape(option.audio)}  ({escape(option.label)})")
        console.print(f"  (took {sum(outcome.timings_s.values()):.1f} s; rate it with `sense feedback up|down`)")
    else:
        console.print(outcome.reply, markup=False)
        for kind, path in outcome.outputs.items():  # a question's plot and trace
            console.print(f"  {kind:6s} {escape(str(path))}")


@app.command()
def run(
    input: Annotated[Path, typer.Argument(help="Audio file (wav, flac, ogg, mp3 …). It is never modified.")],
    request: Annotated[str, typer.Option("--request", "-r", help="What to do, in plain words.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Output audio path (default: INPUT-sense.wav next to the input; a free name is picked if taken). OUT.json and OUT.png go beside it.")] = None,
    user: UserOpt = "default",
    listening_device: Annotated[Optional[str], typer.Option("--listening-device", help="The device you listen on (the transfer then uses target − listening device).")] = None,
    model: ModelOpt = None,
    llm_url: UrlOpt = None,
    no_llm: NoLLMOpt = False,
    fr_dir: FRDirOpt = None,
    variants: Annotated[bool, typer.Option("--variants", help="Also render up to two alternatives (OUT-B.wav, OUT-C.wav) when people mean the tone word in clearly different ways; pick one later in `sense chat`.")] = False,
) -> None:
    """Process INPUT as REQUEST says; write OUT.wav, OUT.json (trace) and OUT.png (plot).

    A question ("do the AirPods Max have more bass than the QC45?", "how loud is this?", "what did you
    change?") is answered instead, with numbers and sources; nothing is processed, and its plot and trace
    go to OUT-answer.png and OUT-answer.json.

    The reply leads with one sentence of what changed, then the details: which device measurement,
    which tone word at which amount and where the amount came from, what was measured on the output.
    """
    from tools.audio_io import MAX_PROCESSED_CHANNELS, load_audio

    with one_line_errors():
        load_audio(input, max_channels=MAX_PROCESSED_CHANNELS)  # fail fast, before loading any model
        engine = _engine(model, llm_url, no_llm, fr_dir, variants)
        outcome = _turn(engine, uuid.uuid4().hex, request, input, user, output, listening_device)
    _print_result(outcome)


@app.command()
def chat(
    input: Annotated[Optional[Path], typer.Argument(help="Audio file to work on (or type `/audio PATH` later).")] = None,
    user: UserOpt = "default",
    listening_device: Annotated[Optional[str], typer.Option("--listening-device")] = None,
    model: ModelOpt = None,
    llm_url: UrlOpt = None,
    no_llm: NoLLMOpt = False,
    fr_dir: FRDirOpt = None,
    variants: Annotated[bool, typer.Option("--variants/--no-variants", help="Offer alternatives B and C (OUT-B.wav, OUT-C.wav) when a tone word means clearly different things to different people.")] = True,
) -> None:
    """A conversation: "make it sound like my AirPods", "a bit more", "even warmer", "undo", "redo",
    "the second one" (answering a question, or picking an offered variant: "variant B", "keep A"),
    "actually make it brighter instead", "compare to the original";
    questions ("which of my headphones has the most bass?", "is it clipping?", "why did you cut 3 kHz?") are
    answered without changing the audio, and "make it sound like those" then uses the device the answer named.

    Commands: `/audio PATH` switches the file, `/good` and `/bad` rate the last result, `/quit` ends.
    """
    from tools.audio_io import MAX_PROCESSED_CHANNELS, load_audio

    with one_line_errors():
        if input is not None:
            load_audio(input, max_channels=MAX_PROCESSED_CHANNELS)
        engine = _engine(model, llm_url, no_llm, fr_dir, variants)
    thread = uuid.uuid4().hex
    console.print("SENSE chat. Type a request; /audio PATH, /good, /bad, /quit.")
    while True:
        try:
            line = console.input("[bold]you>[/bold] ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if not line:
            continue
        if line in ("/quit", "/exit"):
            break
        if line.startswith("/audio "):
            input = _switch_audio(line.split(" ", 1)[1], input)
            continue
        if line in ("/good", "/bad"):
            try:
                _rate(engine.rt.prefs, user, 1 if line == "/good" else -1, None)
            except typer.Exit:
                pass
            continue
        try:
            with one_line_errors():
                outcome = _turn(engine, thread, line, input, user, None, listening_device)
            _print_result(outcome)
        except typer.Exit:
            continue


def _switch_audio(name: str, current: Path | None) -> Path | None:
    """The file `/audio NAME` names when it can be read, else ``current`` (the error line is printed)."""
    from tools.audio_io import MAX_PROCESSED_CHANNELS, load_audio

    candidate = Path(name.strip()).expanduser()
    try:
        with one_line_errors():
            load_audio(candidate, max_channels=MAX_PROCESSED_CHANNELS)
            console.print(f"now working on {candidate}", markup=False)
            return candidate
    except typer.Exit:
        return current


def _rate(prefs, user: str, rating: int, record: int | None) -> None:
    target = prefs.get(user, record) if record is not None else prefs.last(user)
    if target is None:
        err.print("error: no result to rate yet")
        raise typer.Exit(1)
    prefs.rate(user, target.id, rating)
    console.print(f"rated #{target.id} \"{target.request}\" {'👍' if rating > 0 else '👎'}"
                  + ("; similar requests will start from it" if rating > 0 else ""))


@app.command()
def feedback(
    rating: Annotated[str, typer.Argument(help="up (liked it) or down.")],
    user: UserOpt = "default",
    record: Annotated[Optional[int], typer.Option("--record", help="Record id from a trace (default: your last result).")] = None,
) -> None:
    """Rate your last result (or --record ID). Liked amounts become your starting point next time."""
    from knowledge.preferences import PreferenceStore

    if rating not in ("up", "down"):
        err.print("error: rating must be `up` or `down`")
        raise typer.Exit(2)
    try:
        _rate(PreferenceStore(), user, 1 if rating == "up" else -1, record)
    except KeyError as exc:
        err.print(f"error: {exc.args[0] if exc.args else exc}")
        raise typer.Exit(1)


def _stems_folder(input: Path, output_dir: Path | None) -> Path:
    """The folder for the stems: OUTPUT_DIR, or a free INPUT-stems[-N] folder next to the input."""
    if output_dir is not None:
        return output_dir
    from tools.atomic import fit_stem

    base = input.with_name(fit_stem(input.name.split(".")[0]) + "-stems")
    folder, n = base, 0
    while folder.exists():
        n += 1
        folder = base.with_name(f"{base.name}-{n}")
    return folder


@app.command("separate")
def separate_(
    input: Annotated[Path, typer.Argument(help="Audio file (wav, flac, ogg, mp3 …). It is never modified.")],
    method: Annotated[str, typer.Option("--method", help="auto (HTDemucs when its weights are here, else the Spleeter hybrid: pretrained Spleeter vocals + classical drums/bass, else classical), demucs, spleeter or classical.")] = "auto",
    output_dir: Annotated[Optional[Path], typer.Option("--output-dir", "-o", help="Folder for vocals/drums/bass/other.wav (default: INPUT-stems next to the input; existing files are never overwritten).")] = None,
    demucs_model: Annotated[Optional[Path], typer.Option("--demucs-model", help="A demucs model file (.th); default $SENSE_DEMUCS_MODEL, then demucs's own cache.")] = None,
) -> None:
    """Split INPUT into vocals, drums, bass and other (32-bit float WAVs that sum to the input)."""
    from tools.audio_io import load_audio, write_audio
    from tools.errors import OutputExistsError
    from tools.levels import level_change_db
    from tools.separate import METHODS, STEMS, separate

    if method not in METHODS:
        err.print(f"[red]error:[/red] --method must be one of {', '.join(METHODS)}, not {method!r}")
        raise typer.Exit(2)
    with one_line_errors():
        audio = load_audio(input)
        folder = _stems_folder(input, output_dir)
        paths = {stem: folder / f"{stem}.wav" for stem in STEMS}
        taken = [str(p) for p in paths.values() if p.exists()]
        if taken:
            raise OutputExistsError(f"{', '.join(taken)} already exist; not overwriting (choose another --output-dir)")
        result = separate(audio.samples, audio.sample_rate, method, model=demucs_model, progress=True)
        folder.mkdir(parents=True, exist_ok=True)
        console.print(f"{result.method} backend: {result.why}")
        for stem in STEMS:
            write_audio(paths[stem], result.stems[stem], audio.sample_rate, subtype="FLOAT")
            console.print(f"  {stem:6s} {level_change_db(audio.samples, result.stems[stem]):+6.1f} dB re mix  {paths[stem]}",
                          markup=False)


@devices_app.command("search")
def devices_search(
    text: Annotated[str, typer.Argument(help="A device name as you would say it, e.g. 'airpods pro 2'.")],
    k: Annotated[int, typer.Option("--k", help="How many candidates.")] = 5,
    user: UserOpt = "default",
    fr_dir: FRDirOpt = None,
) -> None:
    """Ranked candidates with scores, and how the name resolves."""
    from rich.table import Table

    from knowledge.devices import DeviceIndex
    from knowledge.fr_store import FRStore
    from knowledge.preferences import PreferenceStore

    with one_line_errors():
        store = FRStore.load(fr_dir)
        index = DeviceIndex.build(store)
        table = Table("rank", "device", "type", "score", "measurements")
        for i, c in enumerate(index.search(text, k=k), 1):
            table.add_row(str(i), c.name, c.type, f"{c.score:.3f}", ", ".join(c.sources))
        console.print(table)
        res = index.resolve(text, owned=PreferenceStore().owned_devices(user))
        console.print(f"→ {res.status}: {res.device or res.question}")


@devices_app.command("list")
def devices_list(fr_dir: FRDirOpt = None) -> None:
    """Every device and target in the store."""
    from knowledge.fr_store import FRStore

    with one_line_errors():
        store = FRStore.load(fr_dir)
        for name in store.devices():
            console.print(f"{name}  [dim]{store.device_type(name)}; "
                          f"{', '.join(c.source for c in store.measurements(name))}[/dim]")
        for target in store.targets():
            console.print(f"{target.device}  [dim]target[/dim]")


@devices_app.command("own")
def devices_own(
    name: Annotated[str, typer.Argument(help="The device you own, e.g. 'AirPods Pro 2'.")],
    user: UserOpt = "default",
    fr_dir: FRDirOpt = None,
) -> None:
    """Register a device you own, so "my …" means it."""
    from knowledge.devices import DeviceIndex
    from knowledge.fr_store import FRStore
    from knowledge.preferences import PreferenceStore

    with one_line_errors():
        res = DeviceIndex.build(FRStore.load(fr_dir)).resolve(name)
        if res.status != "resolved":
            err.print(f"error: {res.question}")
            raise typer.Exit(1)
        PreferenceStore().own_device(user, res.device)
        console.print(f"{user} owns {res.device}; \"my {name}\" now means it.")

