.PHONY: run test lint

run:  ## set up and serve the registry with demo data at http://127.0.0.1:8000
	./scripts/run

test:  ## install and run the whole test suite
	./scripts/test

lint:
	.venv/bin/ruff check .
