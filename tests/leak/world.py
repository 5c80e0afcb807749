"""A seeded random world for the leak suite: tenants, nested groups, users, sources with ACL
rules, documents that each carry a unique canary string, deny rules, quarantine, ACL overrides
and chunks planted without a usable ACL.

Everything here is plain data. `World.write` lays it out as a deployment (documents, policy
file, TOML config); tests/leak/oracle.py decides who may read what from the same data, without
Casbin, policies/ or the store.

The structure that guarantees every edge case is fixed (a user without groups, a user in 1,000
groups, principals that differ only in case or in Unicode normal form, files that match no
rule, a broken policy file later on); who is in which group, the extra principals on rules, the
documents, the deny and quarantine targets and the overrides are drawn from the seed.
"""

from __future__ import annotations

import json
import random
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT = "default"
TENANTS = (DEFAULT, "acme", "globex")


def nfc(value: str) -> str:
    return unicodedata.normalize("NFC", value)


def nfd(value: str) -> str:
    return unicodedata.normalize("NFD", value)


# Principals that are one principal written two ways (canonical equivalence: NFC == NFD) ...
CAFE = nfc("group:café")
NAIVE = nfc("group:naïve")
# ... and principals that only look alike: case, and a compatibility character that NFC keeps
# (U+FB01 LATIN SMALL LIGATURE FI; only NFKC would fold it to "fi").
FINANCE_UPPER = "group:Finance"
FINANCE_LIGATURE = "group:\ufb01nance"
BULK_GROUPS = 1000


def bulk(i: int) -> str:
    return f"group:bulk-{i:04d}"


@dataclass(frozen=True)
class Membership:
    """`g, MEMBER, GROUP[, TENANT]`, with MEMBER and GROUP exactly as written in the file."""

    member: str
    group: str
    tenant: str = DEFAULT
    explicit_tenant: bool = True  # write ", default" rather than leaving it out

    def line(self) -> str:
        tail = f", {self.tenant}" if self.tenant != DEFAULT or self.explicit_tenant else ""
        return f"g, {self.member}, {self.group}{tail}"


@dataclass(frozen=True)
class Deny:
    """`p, SUBJECT, OBJECT, ACTION, deny[, TENANT]` (TENANT "*": every tenant)."""

    subject: str
    obj: str
    action: str = "read"
    tenant: str = "*"

    def line(self) -> str:
        tail = "" if self.tenant == "*" else f", {self.tenant}"
        return f"p, {self.subject}, {self.obj}, {self.action}, deny{tail}"


@dataclass(frozen=True)
class Rule:
    glob: str
    allow: tuple[str, ...]  # as written in the config (possibly NFD)


@dataclass(frozen=True)
class Source:
    name: str
    tenant: str
    rules: tuple[Rule, ...]


@dataclass(frozen=True)
class Doc:
    source: str
    uri: str
    topic: str
    canary: str
    text: str

    @property
    def doc_id(self) -> str:
        return f"{self.source}:{self.uri}"


@dataclass(frozen=True)
class Planted:
    """A chunk written straight into an index version with a missing or unusable `acl`."""

    source: str
    uri: str
    canary: str
    text: str
    payload_acl: object  # what goes in the payload's "acl"; MISSING: no "acl" key at all

    @property
    def doc_id(self) -> str:
        return f"{self.source}:{self.uri}"


MISSING = object()


@dataclass
class World:
    seed: int
    users: list[str]
    memberships: list[Membership]
    denies: list[Deny]
    admin_lines: list[str]
    sources: list[Source]
    docs: list[Doc]
    ingest_overrides: dict[str, tuple[str, ...]]  # set before the first ingest
    live_overrides: dict[str, tuple[str, ...]]  # set while the server runs
    quarantined_docs: list[str]
    quarantined_sources: list[str]
    planted: list[Planted]
    # Named edge cases, for targeted assertions and the report.
    special: dict[str, str] = field(default_factory=dict)

    @property
    def overrides(self) -> dict[str, tuple[str, ...]]:
        """Every override in force once the server runs (a live one replaces an earlier one)."""
        return {**self.ingest_overrides, **self.live_overrides}

    def doc(self, doc_id: str) -> Doc:
        return self._by_id[doc_id]

    @property
    def _by_id(self) -> dict[str, Doc]:
        cached: dict[str, Doc] | None = self.__dict__.get("_doc_index")
        if cached is None:
            cached = {d.doc_id: d for d in self.docs}
            self.__dict__["_doc_index"] = cached
        return cached

    def all_canaries(self) -> dict[str, str]:
        """canary -> doc id, planted chunks included."""
        out = {d.canary: d.doc_id for d in self.docs}
        out.update({p.canary: p.doc_id for p in self.planted})
        return out

    def policy_text(self, leave_out: Collection[Membership] = ()) -> str:
        """The policy file: every membership (but those left out: kept elsewhere, see
        tests/leak/memberships.py), deny and admin line, shuffled and irregularly written."""
        rng = random.Random(self.seed ^ 0x5EED)
        lines = [m.line() for m in self.memberships if m not in leave_out]
        lines += [d.line() for d in self.denies]
        lines += self.admin_lines
        rng.shuffle(lines)
        # Formatting the parser must accept: comments, blank lines, irregular spacing.
        out = [f"# leak-suite world, seed {self.seed}", ""]
        for i, line in enumerate(lines):
            if i % 97 == 0:
                out.append(f"# --- block {i // 97} ---")
            if i % 13 == 5:
                line = line.replace(", ", ",", 1)
            if i % 29 == 3:
                line = "  " + line.replace(", ", " ,  ") + "  "
            out.append(line)
            if i % 41 == 0:
                out.append("")
        return "\n".join(out) + "\n"

    def broken_policy_text(self) -> str:
        """A file that does not parse: the memberships without any deny rule, then a bad line.

        If the service applied the part that parses, every deny would be lifted: the oracle
        (which keeps the last good policy) would then see leaks.
        """
        lines = ["# truncated and broken", *(m.line() for m in self.memberships)]
        lines.append("g, alice-without-prefix, group:x")
        return "\n".join(lines) + "\n"

    def config_text(self, model: Path) -> str:
        def s(value: str) -> str:
            return json.dumps(value, ensure_ascii=False)

        out = [
            f"# leak-suite world, seed {self.seed}",
            'data_dir = "data"',
            f"casbin_model = {s(str(model))}",
            'casbin_policy = "policy.csv"',
            "",
        ]
        for source in self.sources:
            out += [
                "[[sources]]",
                f"name = {s(source.name)}",
                f"path = {s('docs/' + source.name)}",
                f"owner = {s('owner-of-' + source.name)}",
            ]
            if source.tenant != DEFAULT or source.name.startswith("h"):
                out.append(f"tenant = {s(source.tenant)}")
            out.append("acl = [")
            for rule in source.rules:
                allow = ", ".join(s(p) for p in rule.allow)
                out.append(f"  {{ glob = {s(rule.glob)}, allow = [{allow}] }},")
            out += ["]", ""]
        return "\n".join(out)

    def write(self, root: Path, model: Path) -> Path:
        """Documents under root/docs/<source>/, root/policy.csv and root/clearance.toml."""
        for doc in self.docs:
            path = root / "docs" / doc.source / doc.uri
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(doc.text, encoding="utf-8")
        for source in self.sources:
            (root / "docs" / source.name).mkdir(parents=True, exist_ok=True)
        (root / "policy.csv").write_text(self.policy_text(), encoding="utf-8")
        config = root / "clearance.toml"
        config.write_text(self.config_text(model), encoding="utf-8")
        return config


# --- content ----------------------------------------------------------------------------------

def _words(text: str) -> list[str]:
    return text.split()


TOPICS: dict[str, tuple[str, list[str]]] = {
    "leave": ("Annual leave and vacation", [
        "Employees accrue vacation days every month and must book annual leave in advance.",
        "Unused holiday allowance carries over until the end of March.",
        "Sick leave does not reduce the vacation balance.",
        "Parental leave is paid in full for sixteen weeks.",
    ]),
    "payroll": ("Payroll and salary bands", [
        "Salaries are paid on the last working day of each month.",
        "Each salary band has a minimum, a midpoint and a maximum.",
        "Bonus payments follow the annual performance review.",
        "Payroll corrections are made in the next pay run.",
    ]),
    "k8s": ("Kubernetes cluster operations", [
        "Deployments roll out to the kubernetes cluster through the release pipeline.",
        "Every service declares CPU and memory limits for its pods.",
        "Node pools are upgraded one availability zone at a time.",
        "The ingress controller terminates TLS for every public endpoint.",
    ]),
    "incident": ("Security incident response", [
        "A suspected data breach is reported to the security team within one hour.",
        "The incident commander opens a dedicated channel and a timeline.",
        "Phishing emails are forwarded to the abuse mailbox.",
        "After every incident a blameless postmortem is written.",
    ]),
    "merger": ("Merger and acquisition planning", [
        "The board reviews the acquisition target and the proposed purchase price.",
        "Due diligence covers contracts, debt and intellectual property.",
        "Signing is planned after the regulator approves the merger.",
        "The deal team keeps the code name confidential.",
    ]),
    "invoice": ("Vendor invoices and payments", [
        "Vendor invoices are approved by the budget owner before payment.",
        "Payment terms are thirty days from the invoice date.",
        "Purchase orders must match the invoice amount.",
        "Late fees from suppliers are escalated to procurement.",
    ]),
    "travel": ("Travel and expenses", [
        "Economy class is booked for flights shorter than six hours.",
        "Hotel costs are reimbursed up to the city limit.",
        "The daily meal allowance covers breakfast, lunch and dinner.",
        "Expense reports need receipts for every item above twenty euros.",
    ]),
    "forecast": ("Quarterly revenue forecast", [
        "The revenue forecast for the next quarter grows by four percent.",
        "Operating margin improves as hosting costs fall.",
        "The sales pipeline covers three times the quarterly target.",
        "Currency effects are shown separately in the forecast.",
    ]),
    "lab": ("Laboratory experiments", [
        "The protein samples are stored at minus eighty degrees.",
        "Each experiment is logged in the electronic lab notebook.",
        "The centrifuge is calibrated every week.",
        "Reagents past their expiry date are disposed of safely.",
    ]),
    "contract": ("Contracts and litigation", [
        "The non-disclosure agreement stays in force for five years.",
        "Litigation holds require preserving every related document.",
        "Contract renewals are reviewed by legal counsel ninety days ahead.",
        "Liability is capped at the fees paid in the last twelve months.",
    ]),
    "onboarding": ("Onboarding new hires", [
        "New hires receive a laptop and accounts on their first day.",
        "Every newcomer is paired with an onboarding buddy.",
        "Mandatory security training is completed in the first week.",
        "The office tour includes the fire exits and the kitchen.",
    ]),
    "garden": ("Office plants and gardening", [
        "The fiddle-leaf fig in the lobby is watered every Tuesday.",
        "Succulents on the balcony need little water in winter.",
        "The rooftop garden grows tomatoes and basil in summer.",
        "Compost from the kitchen feeds the flower beds.",
    ]),
}

TOPIC_QUESTIONS: dict[str, list[str]] = {
    "leave": ["How many vacation days do I get?", "Does unused annual leave carry over?"],
    "payroll": ["When are salaries paid?", "What are the salary bands?"],
    "k8s": ["How are kubernetes deployments rolled out?", "How are node pools upgraded?"],
    "incident": ["How do I report a data breach?", "What happens after a security incident?"],
    "merger": ["What is the acquisition purchase price?", "When is the merger signed?"],
    "invoice": ["Who approves vendor invoices?", "What are the payment terms for invoices?"],
    "travel": ["What is the daily meal allowance?", "Which flights are economy class?"],
    "forecast": ["What is the revenue forecast for next quarter?", "How big is the pipeline?"],
    "lab": ["How are protein samples stored?", "How often is the centrifuge calibrated?"],
    "contract": ["How long does the NDA stay in force?", "What is a litigation hold?"],
    "onboarding": ["What do new hires get on day one?", "What is an onboarding buddy?"],
    "garden": ["When is the fiddle-leaf fig watered?", "What grows in the rooftop garden?"],
}

RANDOM_WORDS = _words(
    "apple orbit velvet quantum harbor lantern meadow cipher tundra falcon pixel walnut "
    "granite ember saffron nebula copper willow thunder mosaic ledger beacon glacier "
    "zephyr obsidian marble juniper cobalt prism arcade"
)

CANARY_WORDS = _words(
    "aardvark albatross alligator alpaca anchovy antelope armadillo avocado badger banjo "
    "barracuda bassoon beaver bison blueberry bobcat buffalo butterfly cactus camel "
    "cantaloupe capybara caribou cashew cello cheetah chestnut chinchilla clarinet coconut "
    "condor cormorant cougar coyote crocodile cucumber dolphin donkey dragonfly eggplant "
    "elephant emu ferret flamingo gazelle gecko gerbil giraffe gooseberry gorilla "
    "grapefruit guava hamster harmonica harp hedgehog hippo hyena iguana jackal jaguar "
    "kangaroo kiwi koala kumquat lemur leopard lobster lychee mackerel mandolin mango "
    "manatee marmot meerkat mongoose moose narwhal nectarine ocelot octopus okapi "
    "orangutan ostrich otter oboe panda pangolin papaya parrot peacock pelican penguin "
    "persimmon piccolo pineapple platypus pomegranate porcupine puffin python quokka "
    "quince raccoon raspberry reindeer rhubarb salamander sardine saxophone scorpion "
    "seahorse shrimp sloth squid starfish tambourine tangerine tapir tortoise toucan "
    "trombone trumpet tuba turnip ukulele vulture walrus wolverine wombat xylophone yak zebra"
)

NAMES = _words(
    "ada bruno chen emeka fatima gus hana ivan jun kofi lena mateo nia omar priya quinn rosa "
    "sami tariq uma vera wen xavi yara zoe aiko bela cyrus dmitri elif farah goran ines"
)


# --- generation ---------------------------------------------------------------------------------


class _Gen:
    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.canaries: set[str] = set()
        self.canary_words: set[tuple[str, ...]] = set()
        self.memberships: list[Membership] = []
        # tenant -> groups defined there, in an order where parents come first
        self.groups: dict[str, list[str]] = {}
        self.users_in: dict[str, list[str]] = {t: [] for t in TENANTS}

    def canary(self) -> str:
        """"CANARY-<8 hex>-<word>-<word>": the hex part is unique (and is what the checks
        look for, so a truncated canary still counts); the two words give the embedder
        something to match, so a query equal to the canary finds its document."""
        while True:
            tag = f"{self.rng.getrandbits(32):08x}"
            words = self.rng.sample(CANARY_WORDS, 2)
            if tag not in self.canaries and tuple(words) not in self.canary_words:
                self.canaries.add(tag)
                self.canary_words.add(tuple(words))
                return f"CANARY-{tag}-{words[0]}-{words[1]}"

    def g(self, member: str, group: str, tenant: str = DEFAULT) -> None:
        explicit = tenant != DEFAULT or self.rng.random() < 0.5
        self.memberships.append(Membership(member, group, tenant, explicit))


def _groups(gen: _Gen) -> None:
    """Nested groups per tenant: a fixed backbone (depth 4 in each tenant) and random extra
    edges from a group to a group defined before it (so no cycles)."""
    rng = gen.rng
    backbone: dict[str, list[tuple[str, str | None]]] = {
        DEFAULT: [
            ("group:staff", None), ("group:engineering", "group:staff"),
            ("group:platform", "group:engineering"), ("group:sre", "group:platform"),
            ("group:finance", "group:staff"), (FINANCE_UPPER, None), (FINANCE_LIGATURE, None),
            (CAFE, None), (NAIVE, None), ("group:board", None), ("group:hr", "group:staff"),
            ("group:contractors", None), ("group:security", "group:engineering"),
            ("role:auditor", None), ("group:banned", None),
        ],
        "acme": [
            ("group:staff", None), ("group:engineering", "group:staff"),
            ("group:ops", "group:engineering"), ("group:oncall", "group:ops"),
            ("group:finance", "group:staff"), ("group:interns", None), (CAFE, None),
        ],
        "globex": [
            ("group:staff", None), ("group:research", "group:staff"),
            ("group:lab", "group:research"), ("group:bench", "group:lab"),
            ("group:interns", None), ("group:finance", "group:staff"), ("role:auditor", None),
        ],
    }
    nestable = {"group:engineering", "group:platform", "group:sre", "group:finance",
                "group:hr", "group:security", "group:ops", "group:oncall", "group:research",
                "group:lab", "group:bench", "group:board"}
    for tenant, entries in backbone.items():
        gen.groups[tenant] = [name for name, _ in entries]
        for i, (name, parent) in enumerate(entries):
            if parent is not None:
                gen.g(name, parent, tenant)
            if name in nestable and i > 1 and rng.random() < 0.3:
                extra = rng.choice([n for n, _ in entries[:i] if n in nestable | {"group:staff"}])
                if extra != parent and extra != name:
                    gen.g(name, extra, tenant)
        if tenant == DEFAULT:
            gen.g("group:security", "role:auditor", tenant)


def _users(gen: _Gen) -> tuple[list[str], dict[str, str]]:
    rng = gen.rng
    regular = rng.sample(NAMES, 30)
    ordinary = {
        DEFAULT: ["group:staff", "group:engineering", "group:platform", "group:sre",
                  "group:finance", "group:hr", "group:security", "group:board",
                  "group:contractors", "role:auditor", CAFE],
        # acme's café written in NFD in the policy file: the same principal as the NFC ACL
        "acme": ["group:staff", "group:engineering", "group:ops", "group:oncall",
                 "group:finance", "group:interns", nfd(CAFE)],
        "globex": ["group:staff", "group:research", "group:lab", "group:bench",
                   "group:interns", "group:finance", "role:auditor"],
    }
    for user in regular:
        roll = rng.random()
        if roll < 0.55:
            tenants = [DEFAULT]
        elif roll < 0.7:
            tenants = ["acme"]
        elif roll < 0.8:
            tenants = ["globex"]
        else:
            tenants = rng.sample(TENANTS, 2)  # in two tenants
        for tenant in tenants:
            gen.users_in[tenant].append(user)
            for group in rng.sample(ordinary[tenant], rng.randint(1, 3)):
                gen.g(f"user:{user}", group, tenant)

    special = {
        "no_groups": "nogroups",  # no g line at all: default tenant, only user:nogroups
        "thousand_groups": "hoarder",  # 1,000 groups
        "case_lower": "dana",  # user:dana vs user:Dana, group:finance vs group:Finance
        "case_upper": "Dana",
        "nfd_member": "cami",  # member of café written in NFD, ACL in NFC
        "nfd_acl": "nils",  # member of naïve written in NFC, ACL in NFD
        "ligature": "fiona",  # member of group:ﬁnance, which is not group:finance
        "named_like_group": "staff",  # user:staff is not group:staff
        "banned": "bo",  # p, group:banned, *, *, deny
        "deep": "deepa",  # user -> sre -> platform -> engineering -> staff
        "two_tenants": "morgan",  # staff in acme and in globex, not in default
    }
    users = [*regular, *special.values()]
    gen.users_in[DEFAULT] += ["nogroups", "hoarder", "dana", "Dana", "cami", "nils", "fiona",
                              "staff", "bo", "deepa"]
    for i in range(BULK_GROUPS):
        gen.g("user:hoarder", bulk(i), DEFAULT)
    gen.g(bulk(500), "group:engineering", DEFAULT)  # one bulk group nests into a real one
    gen.g("user:dana", "group:staff")
    gen.g("user:dana", "group:finance")
    gen.g("user:Dana", "group:staff")
    gen.g("user:Dana", FINANCE_UPPER)
    gen.g("user:cami", nfd(CAFE))
    gen.g("user:nils", NAIVE)
    gen.g("user:fiona", FINANCE_LIGATURE)
    gen.g("user:fiona", "group:staff")
    gen.g("user:bo", "group:banned")
    gen.g("user:bo", "group:staff")
    gen.g("user:deepa", "group:sre")
    gen.g("user:morgan", "group:staff", "acme")
    gen.g("user:morgan", "group:ops", "acme")
    gen.g("user:morgan", "group:staff", "globex")
    gen.g("user:morgan", "group:interns", "globex")
    gen.users_in["acme"].append("morgan")
    gen.users_in["globex"].append("morgan")
    return users, special


def _extra_principal(gen: _Gen, tenant: str) -> str:
    """A random principal for an ACL: usually of the source's tenant, sometimes a name that only
    means something elsewhere (another tenant's user, a group nobody is in)."""
    rng = gen.rng
    roll = rng.random()
    if roll < 0.45:
        return rng.choice(gen.groups[tenant])
    if roll < 0.85 and gen.users_in[tenant]:
        return f"user:{rng.choice(gen.users_in[tenant])}"
    if roll < 0.93:
        other = rng.choice([t for t in TENANTS if t != tenant])
        if gen.users_in[other]:
            return f"user:{rng.choice(gen.users_in[other])}"
    return f"group:ghost-{rng.randint(0, 99)}"


def _sources(gen: _Gen) -> list[Source]:
    rng = gen.rng

    def rules(tenant: str, base: list[tuple[str, list[str]]]) -> tuple[Rule, ...]:
        out = []
        for glob, allow in base:
            allow = list(allow)
            # Rules that carry an edge case keep exactly their principals, so the oracle's
            # self-tests (test_oracle.py) can name who reads them.
            plain = all(p.isascii() and p.startswith("group:") and "bulk" not in p
                        and p != FINANCE_UPPER for p in allow)
            if plain and rng.random() < 0.4:
                allow.append(_extra_principal(gen, tenant))
            out.append(Rule(glob, tuple(dict.fromkeys(allow))))
        return tuple(out)

    return [
        Source("handbook", DEFAULT, rules(DEFAULT, [
            ("general/*.md", ["group:staff"]),
            ("general/*", ["group:staff", "group:contractors"]),
            ("eng/platform/*", ["group:platform"]),
            ("eng/*", ["group:engineering"]),
            ("people/*", ["group:hr", "role:auditor"]),
            ("cafe/*", [CAFE]),  # NFC in the config; cami's membership is written NFD
            ("naive/*", [nfd(NAIVE)]),  # NFD in the config; nils's membership is NFC
            ("bulk/*", [bulk(123), bulk(999)]),
            ("personal/nogroups-*", ["user:nogroups"]),
            ("personal/staff-*", ["user:staff"]),
            ("personal/dana-*", ["user:dana"]),
            # misc/* and personal/other-* match no rule
        ])),
        Source("ledger", DEFAULT, rules(DEFAULT, [
            ("board/*", ["user:dana", "group:board"]),
            ("reports/*", ["group:finance"]),
            ("reports-eu/*", [FINANCE_UPPER]),
            ("audit/*", ["role:auditor"]),
            # unfiled/* matches no rule
        ])),
        Source("acme-wiki", "acme", rules("acme", [
            ("ops/*", ["group:ops"]),
            ("eng/*", ["group:engineering"]),
            ("all/*.md", ["group:staff"]),
            ("people/*", ["group:finance"]),
            ("cafe/*", [CAFE]),  # acme's café: not the default tenant's
            # drafts/* matches no rule; all/*.txt matches none either
        ])),
        Source("globex-lab", "globex", rules("globex", [
            ("lab/bench-*", ["group:bench"]),
            ("lab/*", ["group:lab"]),
            ("research/*", ["group:research"]),
            ("common/*", ["group:staff", "group:interns"]),
            ("audit/*", ["role:auditor"]),
        ])),
        Source("scratch", DEFAULT, rules(DEFAULT, [("*", ["group:staff"])])),
    ]


# Directories of each source: (file-name prefix, how many files). Files are named
# "<prefix><topic>-<k>.md|txt", k = 1, 2, ...
LAYOUT: dict[str, dict[str, list[tuple[str, int]]]] = {
    "handbook": {
        "general": [("", 10)],
        "eng": [("", 6)],
        "eng/platform": [("", 5)],
        "people": [("", 5)],
        "cafe": [("", 4)],
        "naive": [("", 3)],
        "bulk": [("", 4)],
        "personal": [("nogroups-", 2), ("staff-", 2), ("dana-", 2), ("other-", 2)],
        "misc": [("", 4)],
    },
    "ledger": {
        "board": [("", 4)],
        "reports": [("", 6)],
        "reports-eu": [("", 4)],
        "audit": [("", 3)],
        "unfiled": [("", 3)],
    },
    "acme-wiki": {
        "ops": [("", 6)],
        "eng": [("", 5)],
        "all": [("", 6)],
        "people": [("", 4)],
        "cafe": [("", 3)],
        "drafts": [("", 3)],
    },
    "globex-lab": {
        "lab": [("bench-", 3), ("", 5)],
        "research": [("", 5)],
        "common": [("", 5)],
        "audit": [("", 3)],
    },
    "scratch": {"": [("", 4)]},
}


def _doc_text(gen: _Gen, topic: str, canary: str, markdown: bool, serial: int) -> str:
    title, sentences = TOPICS[topic]
    picked = gen.rng.sample(sentences, 3)
    # The canary in the title too: the embedder then ranks its document first for it.
    head = f"# {title} {serial} {canary}\n\n" if markdown else f"{title} {serial} {canary}\n\n"
    body = " ".join(picked)
    return f"{head}Reference code {canary}. {body}\n"


def _docs(gen: _Gen) -> list[Doc]:
    docs = []
    serial = 0
    for source, dirs in LAYOUT.items():
        for directory, groups in dirs.items():
            for prefix, count in groups:
                for k in range(1, count + 1):
                    topic = gen.rng.choice(list(TOPICS))
                    markdown = gen.rng.random() < 0.65
                    name = f"{prefix}{topic}-{k}.{'md' if markdown else 'txt'}"
                    uri = f"{directory}/{name}" if directory else name
                    serial += 1
                    canary = gen.canary()
                    text = _doc_text(gen, topic, canary, markdown, serial)
                    docs.append(Doc(source, uri, topic, canary, text))
    return docs


def _planted(gen: _Gen) -> list[Planted]:
    """Chunks that only a tampered or buggy build could write: no usable ACL at all."""
    shapes: list[object] = [MISSING, [], None, "", "group:staff", [""], {"group:staff": 1}]
    out = []
    for i, shape in enumerate(shapes):
        topic = gen.rng.choice(list(TOPICS))
        canary = gen.canary()
        text = _doc_text(gen, topic, canary, True, 900 + i)
        out.append(Planted("handbook", f"misc/planted-{i}-{topic}.md", canary, text, shape))
    return out


def generate(seed: int) -> World:
    gen = _Gen(seed)
    rng = gen.rng
    _groups(gen)
    users, special = _users(gen)
    sources = _sources(gen)
    docs = _docs(gen)
    by_dir: dict[str, list[Doc]] = {}
    for doc in docs:
        by_dir.setdefault(f"{doc.source}:{doc.uri.rpartition('/')[0]}", []).append(doc)

    def pick(prefix: str) -> Doc:
        return rng.choice(by_dir[prefix])

    default_users = [u for u in gen.users_in[DEFAULT] if u in users[:30]] or ["nogroups"]
    denied_doc = pick("handbook:general")
    denies = [
        Deny("group:contractors", "source:ledger"),  # every tenant
        Deny("group:interns", "doc:acme-wiki:ops/*", tenant="acme"),  # not globex's interns
        Deny(f"user:{rng.choice(default_users)}", f"doc:{denied_doc.doc_id}"),  # exact doc
        Deny("user:Dana", "doc:handbook:general/*"),  # Dana, not dana
        Deny(nfd(CAFE), "doc:handbook:*-2.md"),  # subject in NFD, `*` in the middle
        Deny("role:auditor", "source:globex-lab", tenant="globex"),
        Deny("group:banned", "*", action="*"),  # everything, every action
        Deny("group:staff", "source:handbook", tenant="globex"),  # globex staff only
        Deny("user:hoarder", "doc:handbook:eng/platform/*"),
        Deny(bulk(777), "doc:ledger:reports*"),  # via the 1,000-group user
        Deny("group:sre", f"doc:{pick('handbook:eng').doc_id}", tenant=DEFAULT),
        Deny(f"user:{rng.choice(gen.users_in['acme'] or ['morgan'])}", "source:acme-*",
             tenant="acme"),
        # An admin deny with action "*" is also a read denial, on an object that names no
        # document: it must take nothing away.
        Deny("group:contractors", "index", action="*"),
    ]
    admin_lines = [
        "p, role:admin, index, write",
        "p, role:admin, policy, *",
        "p, role:auditor, audit, read",
    ]
    acme_users = gen.users_in["acme"] or ["morgan"]
    ingest_overrides: dict[str, tuple[str, ...]] = {
        pick("ledger:board").doc_id: ("user:nogroups", FINANCE_UPPER),
    }
    live_overrides: dict[str, tuple[str, ...]] = {
        pick("acme-wiki:ops").doc_id: (f"user:{rng.choice(acme_users)}", "group:interns"),
        pick("globex-lab:common").doc_id: (),  # nobody
        # A file that matched no rule when the version was built: it is not in the index, so
        # an override now cannot make it appear.
        pick("handbook:misc").doc_id: ("group:staff",),
    }
    return World(
        seed=seed,
        users=users,
        memberships=gen.memberships,
        denies=denies,
        admin_lines=admin_lines,
        sources=sources,
        docs=docs,
        ingest_overrides=ingest_overrides,
        live_overrides=live_overrides,
        quarantined_docs=[pick("handbook:general").doc_id],
        quarantined_sources=["scratch"],
        planted=_planted(gen),
        special=special,
    )
