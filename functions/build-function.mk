# How `sam build` makes each function's artifact (template.yaml: Metadata BuildMethod: makefile;
# functions/<function>/Makefile links here). SAM copies the function's folder, symlinks
# resolved, to a scratch directory, runs `make build-<LogicalId>` there with ARTIFACTS_DIR set,
# and zips ARTIFACTS_DIR. The artifact is the handler and the aurelius core, nothing else:
# boto3 comes with the Lambda runtime, aws-lambda-powertools with its public layer
# (template.yaml Globals Layers). Only .py files: no __pycache__ from a local run.
build-%:
	cp app.py "$(ARTIFACTS_DIR)/"
	mkdir -p "$(ARTIFACTS_DIR)/aurelius/core"
	cp aurelius/__init__.py "$(ARTIFACTS_DIR)/aurelius/"
	cp aurelius/core/*.py "$(ARTIFACTS_DIR)/aurelius/core/"
