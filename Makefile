# SENSE: `make demo` and `make test` do all set-up on a fresh machine.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.sense-setup
DATA   ?= $(or $(SENSE_DATA_DIR),../shared/data)
DEMO_TRACK   ?= $(DATA)/music/Kevin_MacLeod_-_Vibe_Ace.hq.ogg
DEMO_REQUEST ?= make this sound like it's on my AirPods, less harsh

.PHONY: setup demo test bench eval app clean-out voice-demo

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/setup.sh agent/models.py voice/models.py
	bash scripts/setup.sh
	touch $@

demo: setup
	mkdir -p out
	$(VENV)/bin/sense run "$(DEMO_TRACK)" --request "$(DEMO_REQUEST)" --output out/demo.wav

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) -m eval.bench
	$(PY) -m demt.bench
	$(PY) app.py --bench --no-llm
	$(PY) -m eval.voice --report out/voice

# The voice loop with no microphone or speaker: a spoken request WAV in, the room's music and the answer out
voice-demo: setup
	mkdir -p out
	$(PY) -m voice.tts "Okay Nabu. It's too boomy." out/request.wav
	$(VENV)/bin/sense voice --request out/request.wav --play "$(DEMO_TRACK)" --output out/room.wav \
	  --answer out/answer.wav --seconds 12 --force

app: setup
	$(PY) app.py $(APP_ARGS)

eval: setup
	$(VENV)/bin/sense eval --report out/eval

clean-out:
	rm -rf out

# Reliability: the full runs behind docs/RELIABILITY.md (the CI slice of each is in `make test`)
.PHONY: fuzz killtest loadtest translate-bench reliability
fuzz: setup
	$(PY) -m eval.fuzz --cases 2000 --seed 0 --report out/fuzz.json

killtest: setup
	$(PY) -m eval.killtest --rounds 300 --json out/killtest.json

loadtest: setup
	$(PY) -m webui.loadtest --sessions 8 --turns 3 --json out/loadtest.json

translate-bench: setup
	$(PY) -m translate.bench --seconds 30

reliability: fuzz killtest loadtest translate-bench
