# pyvhost — see README.md. `make test` and `make demo` do all set-up on a
# fresh Debian machine (packages are installed with apt when run as root).

GO       ?= go
BIN      := bin/pyvhost
VERSION  := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
FUZZTIME ?= 60s

# Debian packages the tests need; the demo and benchmarks need uWSGI and wrk.
TEST_PKGS  := nginx python3-venv python3-flask python3-django python3-dev gcc uwsgi-core tmux chromium \
              postgresql python3-psycopg2 python3-dj-database-url curl \
              python3-starlette python3-fastapi python3-websockets python3-uvloop prometheus
BENCH_PKGS := uwsgi-core uwsgi-plugin-python3 wrk curl python3-uvicorn python3-httptools python3-uvloop

# package:FuzzTarget pairs run by `make fuzz`.
FUZZ := ./nginxconf:FuzzParseFile ./nginxconf:FuzzRender ./nginxconf:FuzzNames ./uwsgictl/wire:FuzzDecode ./uwsgictl/control:FuzzLoadRequest ./uwsgictl/daemon:FuzzWorkerHeaders

# The benchmark scripts shared with the project (beside the repository).
SHARED_BENCH ?= ../shared/bench

.PHONY: build speedups deb test test-short faults soak golden fuzz lint deps deps-bench demo demo-stop bench clean

# The binary embeds the worker's C module, compiled first when gcc and
# python3-dev are here (templates/prebuilt/README.md); without them it still
# builds, and the daemon compiles the module at start-up where it can.
build: speedups
	CGO_ENABLED=0 $(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/pyvhost

# The Debian package (packaging/nfpm.yaml, with nfpm from go.mod's tools):
# bin/pyvhost_VERSION_ARCH.deb. The man page, the completions and the unit
# are made by the binary itself.
DEB_ARCH    ?= $(shell $(GO) env GOARCH)
DEB_VERSION ?= 0.1.0+git$(shell git rev-list --count HEAD 2>/dev/null || echo 0).$(shell git rev-parse --short HEAD 2>/dev/null || echo none)
deb: build
	@mkdir -p bin/deb
	$(BIN) man | gzip -9n > bin/deb/pyvhost.1.gz
	$(BIN) completion bash > bin/deb/pyvhost.bash
	$(BIN) completion zsh > bin/deb/_pyvhost
	$(BIN) completion fish > bin/deb/pyvhost.fish
	$(BIN) systemd-unit > bin/deb/pyvhost.service
	DEB_ARCH=$(DEB_ARCH) DEB_VERSION=$(DEB_VERSION) $(GO) tool nfpm package --config packaging/nfpm.yaml --packager deb --target bin/

speedups:
	@$(GO) run ./cmd/speedups templates/prebuilt || echo "make: no prebuilt C module: the daemon will compile it at start-up where a compiler is"

# Every test, the end-to-end suites with real nginx included.
test: deps
	$(GO) test -count=1 ./...

# The fault suite (every TestFault*): the daemon's crashes, exit statuses,
# a master killed while forking, idle and slow peers, short and stalled
# bodies, hostile headers; deploys on a read-only or full disk, SIGKILLed
# half-way, losing nginx half-way, racing. make test runs each in a short
# form; this repeats the ones that hit races by chance FAULT_ROUNDS times.
FAULT_ROUNDS ?= 20
faults: deps
	FAULT_ROUNDS=$(FAULT_ROUNDS) $(GO) test -count=1 -timeout 30m -run 'Fault' ./uwsgictl/daemon/ ./cmd/pyvhost/

# The soak (cmd/pyvhost/e2e_soak_test.go): load through nginx on two apps
# while the daemon reloads them, code is redeployed and nginx reloads; it
# fails on any non-200 and on descriptor or RSS growth, and prints the
# figures. make test runs it for 1 minute.
SOAK_MINUTES ?= 3
soak: deps
	@SOAK_MINUTES=$(SOAK_MINUTES) $(GO) test -count=1 -v -timeout 0 -run '^TestSoak$$' ./cmd/pyvhost/ > soak.log 2>&1; rc=$$?; \
		grep -E 'soak:|fds|^(--- |ok|FAIL)|_test.go' soak.log; echo "full output: soak.log"; exit $$rc

# Unit tests only: skips the suites that start nginx or Python.
test-short:
	$(GO) test -short ./...

# Rewrite the golden files after an intended change; review the git diff.
golden:
	$(GO) test ./nginxconf/ -run 'Golden|Corpus' -update
	$(GO) test ./deployer/ -run 'Golden' -update
	$(GO) test ./cmd/pyvhost/ -run 'TestTablesFitTheTerminal' -update

fuzz:
	@set -e; for f in $(FUZZ); do \
		pkg=$${f%%:*}; target=$${f##*:}; \
		echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME); \
	done

lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

# Install the Debian packages the tests need, when missing. As root it runs
# apt-get; otherwise it says what to install.
deps:
	@$(call install,$(TEST_PKGS))

deps-bench:
	@$(call install,$(BENCH_PKGS))

define install
	missing=""; for p in $(1); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
		else \
			echo "missing Debian packages:$$missing — run: sudo apt-get install$$missing"; exit 1; \
		fi; \
	fi
endef

# Side by side with Debian's uWSGI behind one nginx (medians of 5 rounds;
# the last line of each run gives the pyvhost/uWSGI ratios), memory with 20
# mostly idle sites, and a never-loaded app's first request.
bench: build deps deps-bench
	@echo "== shared TCP port (the seed's set-up) vs uWSGI on TCP"
	bash $(SHARED_BENCH)/vs-uwsgi.sh $(BIN) 5 4
	@echo "== per-app unix sockets vs uWSGI on a unix socket (best against best)"
	PV_SOCKETS=1 UW_UNIX=1 bash $(SHARED_BENCH)/vs-uwsgi.sh $(BIN) 5 4
	@echo "== pyvhost's default (per-app unix sockets) vs the seed's uWSGI on TCP"
	PV_SOCKETS=1 bash $(SHARED_BENCH)/vs-uwsgi.sh $(BIN) 5 4
	@echo "== 20 sites, one busy, --idle 5"
	bash $(SHARED_BENCH)/many-apps.sh $(BIN) 20 5
	@echo "== 1,000 sites on one box (testdata/bench/many-sites.sh N for more)"
	testdata/bench/many-sites.sh $(BIN) 1000 10
	@echo "== cold start"
	testdata/bench/first-request.sh $(BIN)
	@echo "== redeploy of a hello site with its venv in place"
	testdata/bench/redeploy.sh $(BIN) 7
	@echo "== HTTPS: deploy --tls auto against pebble, and a TLS redeploy beside an HTTP one"
	testdata/bench/tls.sh $(BIN) 7
	@echo "== ASGI vs uvicorn: a bare app, a Starlette app, requests that await 50 ms"
	bash $(SHARED_BENCH)/vs-uvicorn.sh $(BIN) 5 4
	APP=starlette bash $(SHARED_BENCH)/vs-uvicorn.sh $(BIN) 5 4
	PATH_=/sleep CONNS=256 bash $(SHARED_BENCH)/vs-uvicorn.sh $(BIN) 5 4
	@echo "== WebSocket echo vs uvicorn, 64 sockets"
	testdata/bench/ws-echo.sh $(BIN) 5 4

demo: build deps
	@testdata/demo/demo.sh

demo-stop:
	@testdata/demo/demo-stop.sh

clean:
	rm -rf bin
