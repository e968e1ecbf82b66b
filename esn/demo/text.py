"""Plausible, deterministic text for the demo: names, posts, answers, policies."""

from __future__ import annotations

import random

from esn.processes import Process

FIRST = [
    "Anna",
    "Bram",
    "Carla",
    "Daan",
    "Eva",
    "Femke",
    "Gijs",
    "Hanna",
    "Ivo",
    "Jasmijn",
    "Koen",
    "Lotte",
    "Mees",
    "Noor",
    "Olaf",
    "Puck",
    "Quinten",
    "Roos",
    "Sem",
    "Tess",
    "Uri",
    "Vera",
    "Wout",
    "Xander",
    "Yara",
    "Zoë",
    "Ahmed",
    "Bilal",
    "Chen",
    "Dilan",
    "Elif",
    "Farah",
    "Goran",
    "Hiro",
    "Imani",
    "Jonas",
    "Kofi",
    "Leila",
    "Mateo",
    "Nadia",
    "Omar",
    "Priya",
    "Rafael",
    "Sanne",
    "Tomás",
    "Ugo",
    "Wiebe",
]
LAST = [
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "Mulder",
    "de Boer",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Dijk",
    "Dekker",
    "Brouwer",
    "de Wit",
    "Dijkstra",
    "Smits",
    "de Graaf",
    "van der Meer",
    "Kok",
    "Jacobs",
    "Yilmaz",
    "Haddou",
    "Kowalski",
    "Nguyen",
    "Santos",
    "Okafor",
    "Schmidt",
    "Rossi",
    "Novak",
    "Lindqvist",
    "Moreau",
    "Ibrahim",
]

TOPICS: dict[Process, tuple[str, ...]] = {
    Process.marketing: (
        "the spring campaign results",
        "a customer story from the trade fair",
        "new product photos for the web shop",
        "the newsletter open rates",
        "our booth at the regional fair",
    ),
    Process.service: (
        "a pump that keeps tripping after a filter change",
        "the spare-parts lead time for the X200 series",
        "a firmware update that fixed the sensor drift",
        "how to reset the controller without losing settings",
        "a recurring leak at the customer site in Zwolle",
    ),
    Process.innovation: (
        "an idea to reuse packaging from suppliers",
        "a prototype of the self-cleaning nozzle",
        "a pilot with predictive maintenance",
        "the hackathon themes for next quarter",
        "reducing energy use in the curing ovens",
    ),
    Process.recruitment: (
        "welcoming our new colleagues this month",
        "an open vacancy for a field engineer",
        "the onboarding checklist",
        "referrals for the R&D positions",
        "the buddy programme for new hires",
    ),
    Process.production: (
        "the night shift handover on line 3",
        "a safety moment about forklift traffic",
        "downtime on the press this week",
        "the 5S audit in plant South",
        "changeover times on the packaging line",
    ),
    Process.general: (
        "Friday drinks",
        "the charity run",
        "the new coffee machines",
        "the parking arrangements during the works",
    ),
}
QUESTION_OPENERS = (
    "Does anyone know about {topic}?",
    "Quick question on {topic}: who has seen this before?",
    "Looking for advice on {topic}.",
)
POST_OPENERS = (
    "Sharing an update on {topic}.",
    "Some notes on {topic}.",
    "Good news about {topic}!",
    "Lessons learned from {topic}.",
)
ANSWERS = (
    "We had the same last month; the fix is in the manual, section 4.",
    "Try asking the team in plant North, they solved it quickly.",
    "Thanks for sharing, this is useful for our team too.",
    "Great work! Let's discuss it at the next stand-up.",
    "I can help with this, I'll send you the details.",
    "Interesting. Did you measure the effect?",
)
REPLIES = ("Thanks!", "That worked, thank you.", "Good point, I'll follow up.", "Noted.")


def person_name(index: int) -> tuple[str, str]:
    """A name for person ``index``, the same on every run."""
    first = FIRST[index % len(FIRST)]
    last = LAST[(index // len(FIRST) + index * 7) % len(LAST)]
    return first, last


class TextMaker:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def post(
        self, process: Process, hashtags: tuple[str, ...], question: bool, article: bool
    ) -> tuple[str | None, str]:
        topic = self.rng.choice(TOPICS[process])
        opener = self.rng.choice(QUESTION_OPENERS if question else POST_OPENERS)
        text = opener.format(topic=topic)
        tags = " ".join(
            f"#{t}"
            for t in self.rng.sample(hashtags, min(len(hashtags), 1 + (self.rng.random() < 0.3)))
        )
        if article:
            title = topic[0].upper() + topic[1:]
            body = (
                f"{text}\n\n## What happened\n\nWe looked into {topic} with the team and wrote "
                f"down what we found.\n\n## Next steps\n\n- share it with the other sites\n"
                f"- review it in a month\n\n{tags}"
            )
            return title, body
        return None, f"{text} {tags}".strip()

    def comment(self, process: Process, question: bool, mention: str | None) -> str:
        text = self.rng.choice(ANSWERS)
        if mention:
            text = f"@{mention} {text}"
        return text

    def reply(self) -> str:
        return self.rng.choice(REPLIES)

    def group_description(self, name: str, process: Process) -> str:
        return f"{name}: the place for {process.value} work at Northwind."

    def policy_body(self, title: str, version: int) -> str:
        return (
            f"# {title} (version {version})\n\n"
            "1. Be respectful; disagree with ideas, not people.\n"
            "2. Share knowledge openly; keep customer data out of public groups.\n"
            "3. Report abuse with the report button; moderators answer within one working day.\n"
            "4. Nobody is expected to answer outside working hours.\n"
        )
