# The two commands of the README: `make run` and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins boto3 older than the app does: it gets an environment of its own.
CHECKOV := $(VENV)/checkov
CHECKOV_STAMP := $(CHECKOV)/.installed

STAGE ?= dev
# The policy files as validated (pydantic) at build time: what a cold start reads.
POLICIES := chalicelib/policies/validated.json

.PHONY: run test soak lint package browser bench format clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip<26.3"  # chalice 1.34 packages with pip<26.3
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt $(STAMP)
	test -x $(CHECKOV)/bin/python || $(PYTHON) -m venv $(CHECKOV)
	$(CHECKOV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

$(POLICIES): $(STAMP) $(wildcard chalicelib/policies/*.toml) chalicelib/policies/validate.py \
		chalicelib/domain/policy.py chalicelib/domain/rules.py
	$(BIN)/python -m chalicelib.policies.validate
	touch $@

run: $(STAMP) $(POLICIES)
	$(BIN)/shophook local

# No function past rank C (cyclomatic complexity above 20) in the app.
lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/xenon --max-absolute C app.py chalicelib shophook simulator

# The deployable template: chalice's functions with infra/template.json merged in,
# checked by cfn-lint and by checkov (what it skips, and why: infra/checkov.yaml).
package: $(STAMP) $(CHECKOV_STAMP) $(POLICIES)
	$(BIN)/shophook infra --check
	rm -rf out/$(STAGE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) --merge-template infra/template.json out/$(STAGE)
	$(BIN)/python -m shophook.package out/$(STAGE)/deployment.zip
	$(BIN)/cfn-lint out/$(STAGE)/sam.json
	$(CHECKOV)/bin/checkov --config-file infra/checkov.yaml --file out/$(STAGE)/sam.json

# The connect page and the console are tested in a real browser: Debian's chromium,
# its driver, and a CJK font so that screenshots of the Chinese pages are readable.
browser:
	@(command -v chromium && command -v chromedriver && fc-list :lang=zh | grep -q .) >/dev/null 2>&1 \
	|| (apt-get update -qq && apt-get install -y -qq chromium chromium-driver fonts-wqy-microhei >/dev/null) \
	|| echo "chromium could not be installed here: the browser tests will be skipped"

test: $(POLICIES) lint package browser
	$(BIN)/pytest -n 2 --dist loadfile

# The reliability suite's long variants (1,000 full-stack storms, every fault at
# every AWS call, a 60 s load run); `make test` runs the fast ones.
soak: $(STAMP)
	SHOPHOOK_SOAK=1 $(BIN)/pytest -n 2 --dist load tests/reliability

# Not part of `make test`: prints each benchmark's table, writes bench/results/.
bench: $(STAMP)
	$(BIN)/python -m bench

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
