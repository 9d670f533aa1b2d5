#!/usr/bin/env python3
"""Writes the ordinary-text corpus for the redaction false-positive test.

Deterministic (fixed seed): prose, code and logs of an ML pipeline, written for this
project from templates below; no text is copied from elsewhere. The corpus deliberately
holds the shapes that look like secrets but are not: hex digests, UUIDs, base64 checksums,
git hashes, model ids, kebab-case names, URLs without credentials, words such as "token",
"secret", "Basic", "Bearer" in prose, and assignments of literals.

Run: python3 tests/corpus/generate.py (rewrites tests/corpus/*.txt).
"""
import base64
import hashlib
import os
import random

R = random.Random(20261207)
HERE = os.path.dirname(os.path.abspath(__file__))

NOUNS = ["model", "dataset", "batch", "shard", "stage", "round", "checkpoint", "tokenizer",
         "gradient", "optimizer", "learner", "teacher", "student", "loss", "metric", "worker",
         "queue", "pipeline", "journal", "policy", "budget", "lease", "request", "secret",
         "token", "password", "key", "header", "bearer", "credential", "registry", "mirror",
         "cluster", "node", "volume", "bucket", "notebook", "kernel", "schema", "feature"]
VERBS = ["loads", "writes", "rotates", "validates", "shards", "evaluates", "retries", "skips",
         "caches", "streams", "compresses", "hashes", "signs", "redacts", "uploads",
         "downloads", "schedules", "drains", "seals", "verifies", "counts", "throttles"]
ADJS = ["large", "small", "stale", "fresh", "basic", "private", "public", "secret", "random",
        "sparse", "dense", "quantized", "distilled", "frozen", "shared", "local", "remote",
        "encrypted", "signed", "valid", "expired", "temporary", "nightly", "stable"]
ADVS = ["quickly", "slowly", "again", "once", "twice", "safely", "lazily", "eagerly"]
PEOPLE = ["the operator", "a reviewer", "the scheduler", "the daemon", "our team", "the bearer of the lease",
          "the trainer", "the on-call engineer", "the client", "the sidecar"]


def sentence():
    forms = [
        lambda: f"{R.choice(PEOPLE).capitalize()} {R.choice(VERBS)} the {R.choice(ADJS)} {R.choice(NOUNS)} {R.choice(ADVS)}.",
        lambda: f"When the {R.choice(NOUNS)} is {R.choice(ADJS)}, the {R.choice(NOUNS)} {R.choice(VERBS)} every {R.choice(NOUNS)}.",
        lambda: f"The {R.choice(NOUNS)} token budget is {R.randint(1, 9000)} tokens per second; keep the secret out of logs.",
        lambda: f"Basic usage: run the {R.choice(NOUNS)} with --{R.choice(NOUNS)}-{R.choice(NOUNS)} and check the {R.choice(ADJS)} output.",
        lambda: f"A {R.choice(ADJS)} password policy asks for rotation every {R.randint(2, 90)} days, and the key is never printed.",
        lambda: f"Set the API key in the environment, not in the {R.choice(NOUNS)} file; the token: it expires at midnight.",
        lambda: f"Bearer tokens and basic auth are both refused here; see section {R.randint(1, 12)}.{R.randint(1, 9)}.",
        lambda: f"In round {R.randint(1, 40)}, accuracy rose to {R.random():.4f} while the loss fell to {R.random():.5f}.",
        lambda: f"Ask-me-anything sessions, task-{R.randint(100, 9999)} and risk-free desk-lamp purchases are off topic.",
        lambda: f"The {R.choice(NOUNS)}'s {R.choice(NOUNS)} was {R.choice(ADJS)} and {R.choice(ADJS)}, so {R.choice(PEOPLE)} {R.choice(VERBS)} it.",
    ]
    return R.choice(forms)()


def hexd(n):
    return "".join(R.choice("0123456789abcdef") for _ in range(n))


def uuid():
    h = hexd(32)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def b64(n):
    return base64.b64encode(bytes(R.getrandbits(8) for _ in range(n))).decode()


MODELS = ["bert-base-uncased", "gpt2-medium", "t5-small", "distilroberta-base", "mistral-7b-instruct",
          "llama-3-8b", "qwen2-1.5b", "phi-3-mini-4k", "e5-large-v2", "whisper-small"]
ORGS = ["acme-ml", "example-org", "research-lab", "our-team"]


def log_line(i):
    ts = f"2026-02-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}:{R.randint(0, 59):02d}:{R.randint(0, 59):02d}.{R.randint(0, 999):03d}Z"
    forms = [
        lambda: f"{ts} INFO train step={i} loss={R.random():.4f} lr={R.random() / 1000:.2e} tokens/s={R.randint(1000, 90000)} grad_norm={R.random() * 3:.3f}",
        lambda: f"{ts} INFO saved checkpoint out/round_{R.randint(1, 9)}/ckpt-{i}.safetensors sha256={hashlib.sha256(str(i).encode()).hexdigest()}",
        lambda: f"{ts} INFO downloading {R.choice(ORGS)}/{R.choice(MODELS)} revision={hexd(40)} from https://huggingface.co/{R.choice(ORGS)}/{R.choice(MODELS)}/resolve/main/config.json",
        lambda: f"{ts} WARN request_id={uuid()} retry={R.randint(1, 5)} status=503 url=https://api.example.com/v1/jobs/{uuid()}?page={R.randint(1, 9)}&limit=50",
        lambda: f"{ts} DEBUG cache hit key=dataset:{hexd(16)} etag=\"{b64(12)}\" size={R.randint(1, 10**9)}",
        lambda: f"{ts} INFO docker pull registry.example.com/ml/trainer@sha256:{hexd(64)}",
        lambda: f"{ts} INFO git checkout {hexd(40)} (HEAD -> main, origin/main) Merge branch 'feature/{R.choice(NOUNS)}-{R.choice(NOUNS)}'",
        lambda: f"{ts} ERROR stage {R.choice(['generate', 'validate', 'train', 'eval'])} exited with status {R.randint(1, 137)} after {R.randint(1, 3600)}s",
        lambda: f"{ts} INFO pip install torch=={R.randint(1, 2)}.{R.randint(0, 9)}.{R.randint(0, 9)} --index-url https://download.pytorch.org/whl/cu121",
        lambda: f"{ts} INFO {{\"event\":\"batch_done\",\"rows\":{R.randint(1, 99999)},\"tokenizer\":\"bpe\",\"max_tokens\":{R.randint(64, 8192)},\"use_token\":true,\"api_key\":null}}",
        lambda: f"{ts} INFO md5={hashlib.md5(str(i).encode()).hexdigest()} crc32c={b64(4)} object=gs://bucket-{R.randint(1, 99)}/shards/part-{i:05d}.parquet",
        lambda: f"{ts} INFO GET /api/v1/status 200 {R.randint(1, 999)}us peer=127.0.0.1:{R.randint(1024, 65535)} user-agent=curl/8.5.0",
        lambda: f"{ts} INFO wandb run {hexd(8)} synced; view at https://wandb.ai/{R.choice(ORGS)}/runs/{hexd(8)}",
        lambda: f"{ts} INFO sk-learn compatible estimator wrapper loaded; AsiaPacific region; ghp_short and xoxo",
    ]
    return R.choice(forms)()


CODE = [
    "def {f}(token: str, password: Optional[str] = None) -> bool:\n    if token == expected:\n        return True\n    return {g}(token, max_tokens={n})\n",
    "fn {f}(input: &str) -> Result<usize, Error> {{\n    let tokens = lexer.tokenize(input)?;\n    let secret_count = tokens.iter().filter(|t| t.is_secret()).count();\n    Ok(secret_count + {n})\n}}\n",
    "const {F}_TIMEOUT_MS: u64 = {n};\nlet digest = Sha256::digest(b\"{h}\");\nassert_eq!(hex::encode(digest).len(), 64);\n",
    "class {C}(nn.Module):\n    def __init__(self, hidden={n}):\n        super().__init__()\n        self.proj = nn.Linear(hidden, hidden)\n        self.api_key_env = \"OPENAI_API_KEY\"\n",
    "if [ -z \"$GITHUB_TOKEN\" ]; then echo 'GITHUB_TOKEN is not set; export it first' >&2; exit 1; fi\n",
    "export {F}_DIR=/var/lib/heidi/{f}\nexport CUDA_VISIBLE_DEVICES={n}\npython -m train --config configs/{f}.yaml --seed {n}\n",
    "    let uuid = \"{u}\";\n    let checksum = \"{b}\";\n    map.insert(\"{f}\", {n});\n",
    "SELECT id, name, created_at FROM {f} WHERE owner = $1 AND updated_at > now() - interval '{n} days';\n",
    "// isTokenValid, hasPassword, setToken and maxTokens are names, not secrets.\nlet isTokenValid = tokenCount > {n} && !hasPassword;\n",
    "- name: {f}\n  image: registry.example.com/ml/{f}:v{n}\n  env:\n    - name: HF_HOME\n      value: /cache/hf\n",
]


def code_block():
    f = R.choice(NOUNS) + "_" + R.choice(NOUNS)
    return R.choice(CODE).format(f=f, g=R.choice(VERBS), n=R.randint(1, 4096), F=f.upper(),
                                 C="".join(w.capitalize() for w in f.split("_")), h=hexd(24),
                                 u=uuid(), b=b64(24))


def write(name, produce, target):
    out = []
    size = 0
    i = 0
    while size < target:
        piece = produce(i)
        out.append(piece)
        size += len(piece) + 1
        i += 1
    with open(os.path.join(HERE, name), "w") as fh:
        fh.write("\n".join(out) + "\n")


write("prose.txt", lambda i: " ".join(sentence() for _ in range(R.randint(2, 5))), 120_000)
write("code.txt", lambda i: code_block(), 120_000)
write("logs.txt", log_line, 160_000)
