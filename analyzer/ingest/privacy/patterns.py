"""What ``analyzer.ingest.privacy.redact`` looks for: the word lists (hand-written ones about meaning, and the
data-derived lexicon shipped in ``resources/privacy_lexicon.json``) and the precompiled patterns
for e-mails, phones, cards, addresses, plates and the cues around names. The decisions (which
candidate is a name, plate or address, and how overlaps resolve) stay in ``analyzer.ingest.privacy.redact``.

The lists and patterns the redactor uses are public names (``PHONE``, ``ADDRESS``, ``TITLES``,
``common_words()``...); the fragments they are built from (``_NUM``, ``_NAME_SEQ``...) and the
lexicon loader stay private to this module.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib import resources


def word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


# --------------------------------------------------------------------------------------------
# Word lists. Hand-written ones are small and about meaning; the data-derived lexicon is a file.

STREET_SUFFIXES = word_set(
    """st st. str street streets sts ave ave. av avenue rd rd. road blvd boulevard pl place ter terr
    terrace ct court sq square way dr drive ln lane pkwy pky parkway hwy highway plz plaza cir circle
    row wharf pk park path aly alley ext expy expressway brg bridge fwy mall walk xing crossing"""
)
# Organisation words: a capitalised run ending in one is a business, not a person.
BUSINESS_WORDS = word_set(
    """realty reality construction corp inc llc co company trust management services service
    apartments associates group partners properties development transport transportation roofing
    painting plumbing electric landscaping cleaners motors auto bakery cafe restaurant pizza
    liquors liquor market deli grill pub hotel bank school church center centre donuts doughnuts
    donnuts coffee rentals rental property"""
)
# Words that turn a preceding capitalised name into a place, building, organisation or thing.
PLACE_WORDS = (
    STREET_SUFFIXES
    | BUSINESS_WORDS
    | word_set(
        """school schools academy elementary high middle college university library playground field
    fields center centre hall church cathedral chapel station hospital cemetery pond beach garden
    gardens market building house apartments apts apt tower towers realty construction corp corp.
    inc inc. llc co co. company companies cafe restaurant bar pizza liquor liquors auto bakery hotel
    trust management services service foundation association stadium arena club court courthouse
    gym theater theatre museum memorial monument bank park. island hill heights square. commons
    common green greenway trail reservation playground. pool rink tunnel pier terminal plaza.
    transport transportation roofing painting plumbing electric landscaping cleaners motors
    cleaning group associates partners properties development shop store deli grill kitchen pub
    tavern lounge salon spa dental medical clinic pharmacy health housing authority department
    dept commission council office yard lot garage village"""
    )
)
# Lower-case nouns that make the capitalised words before them a place or business.
THING_WORDS = STREET_SUFFIXES | word_set(
    """bar store shop restaurant tunnel building lot garage station school church playground field
    pizza cafe market hotel apartments company construction realty tower center centre bakery deli
    liquors liquor pub hall library hospital donuts doughnuts statue monument memorial truck trucks
    van vans vehicle car cars bus"""
)
# Place words that are also common surnames: after a strong cue "Tom Park" stays a name.
SURNAME_PLACE_WORDS = word_set(
    """park hill green field fields lane way hall house church banks bridge brooks wood rowe ford
    row court pond beach garden gardens booth chapel cross street walker mills parks"""
)
COMPASS = word_set("east west north south e w n s")
TITLES = word_set(
    """mr mrs ms miss mx dr officer ofc sgt sergeant det detective capt captain lt lieutenant chief
    councilor councillor councilwoman councilman mayor commissioner rep representative senator
    father fr rev reverend sister ssg cpl trooper inspector congressman congresswoman governor gov
    president supt superintendent principal judge attorney"""
)
NOT_NAME_AFTER_TITLE = word_set(
    """mayor badge officer sgt commissioner president director the a an of and or on in at from for
    who is was has had will can did does not no please thank thanks returned came said"""
)
CAR_WORDS = word_set(
    """acura alfa audi bmw buick cadillac chevy chevrolet chrysler dodge fiat ford gmc honda hummer
    hyundai infiniti infinity isuzu jaguar jeep kia land lexus lincoln mazda mercedes benz mercury
    mini mitsubishi nissan oldsmobile plymouth pontiac porsche ram range rover saab saturn scion
    smart subaru suzuki tesla toyota black white silver grey gray red blue green yellow orange
    brown gold tan maroon beige purple volkswagen vw volvo yamaha kawasaki harley davidson camry
    corolla civic accord altima sentra maxima prius rav4 highlander tacoma tundra sienna odyssey
    pilot crv cr-v explorer escape expedition focus fusion taurus mustang impala malibu tahoe
    suburban silverado equinox cruze wrangler cherokee grand caravan charger durango jetta passat
    golf outback forester impreza legacy rogue murano pathfinder elantra sonata tucson santa fe
    optima sorento soul rio navigator escalade sedan suv van truck pickup coupe wagon minivan"""
)
AGENCIES = word_set(
    """btd bpd dpw isd bfd bha bps bwsc mbta dcr ons cep bprd massdot msp ems boston public works
    transportation department police fire code enforcement inspectional services city hall mayor
    mayor's office parks recreation water sewer commission"""
)
_US_STATES = (
    "alabama|alaska|arizona|arkansas|california|colorado|connecticut|delaware|florida|georgia|hawaii|"
    "idaho|illinois|indiana|iowa|kansas|kentucky|louisiana|maine|maryland|massachusetts|mass|"
    "michigan|minnesota|mississippi|missouri|montana|nebraska|nevada|new hampshire|new jersey|"
    "new mexico|new york|north carolina|north dakota|ohio|oklahoma|oregon|pennsylvania|"
    "rhode island|south carolina|south dakota|tennessee|texas|utah|vermont|virginia|washington|"
    "west virginia|wisconsin|wyoming|quebec|ontario"
)
_STATE_CODES = (
    "AL|AK|AZ|AR|CA|CO|CT|DE|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|"
    "NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|DC|Ma|Mass|MASS|QC|ON"
)
# Neighbourhoods and towns: also street names ("Boston St"), but "12 Boston" is rarely an address.
PLACE_NAMES = frozenset(
    (
        "boston",
        "dorchester",
        "roxbury",
        "brighton",
        "allston",
        "charlestown",
        "mattapan",
        "roslindale",
        "hyde park",
        "jamaica plain",
        "east boston",
        "south boston",
        "west roxbury",
        "back bay",
        "south end",
        "north end",
        "mission hill",
        "beacon hill",
        "chinatown",
        "downtown",
        "seaport",
        "cambridge",
        "brookline",
        "newton",
        "quincy",
        "chelsea",
        "revere",
        "everett",
        "somerville",
        "medford",
        "milton",
        "dedham",
        "winthrop",
        "malden",
        "waltham",
        "watertown",
        "massachusetts",
        "mass",
        "ma",
        "usa",
    )
)
STATE_CODE_SET = frozenset(c.upper() for c in _STATE_CODES.split("|") if len(c) == 2)
PLATE_STOP = word_set(
    """unknown unk unkn none na n/a no not nope photo pic picture see missing plate plates available
    temp temporary dealer paper covered expired unreadable illegible unsure null nil tbd ma"""
)


@lru_cache(maxsize=1)
def _lexicon() -> dict[str, frozenset[str]]:
    """Data-derived word lists shipped with the package (see ``benchmarks/privacy.py``)."""
    path = resources.files("analyzer").joinpath("resources", "privacy_lexicon.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    return {key: frozenset(words) for key, words in data.items() if isinstance(words, list)}


def not_name_words() -> frozenset[str]:
    return _lexicon()["not_name_words"]


def common_words() -> frozenset[str]:
    return _lexicon()["common_words"]


def street_names() -> frozenset[str]:
    return _lexicon()["street_names"]


# --------------------------------------------------------------------------------------------
# Patterns.

PLACEHOLDER = re.compile(r"\[(?:NAME|PHONE|EMAIL|PLATE|ADDRESS|CARD|SSN)\]")

EMAIL = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][\w.+%-]*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])"
)

PHONE = re.compile(
    r"(?<![\w+])(?:\+\s?1[\s.-]?|1[\s.-])?"
    r"(?:\(\s*[2-9]\d{2}\s*\)[\s.-]?|[2-9]\d{2}\s?[\s./-]?\s?)"
    r"[2-9]\d{2}[\s.-]?\d{4}"
    r"(?:\s*(?:ext\.?|x\.?|extension)\s*\d{1,5})?(?![\w-])",
    re.IGNORECASE,
)
# Seven-digit numbers only count after a phone cue: "call 635-3831", "cell# 555-0101".
PHONE7 = re.compile(
    r"(?i:\b(?:call|phone|tel|cell|contact|number|mobile|#))[\s:#.-]{0,3}([2-9]\d{2}[-.]\d{4})(?![\w-])"
)

CARD = re.compile(r"(?<![\w-])[2-6]\d{2,3}(?:[ -]?\d){9,15}(?![\w-])")

_NUM = r"\d{1,5}[A-Za-z]?"
_ADDR_STOP_WORDS = (
    "on|in|at|the|of|and|or|for|to|from|near|by|a|an|is|are|was|were|has|have|had|it|its|this|"
    "that|cars?|vehicles?|trucks?|hours?|hrs?|days?|weeks?|months?|years?|times?|minutes?|mins?|"
    "feet|ft|foot|blocks?|people|way|door|doors|dr|am|pm|x|story|family|units?|houses?|homes?|"
    "bags?|cones?|spots?|spaces?|signs?|trees?|cases?"
)
ADDRESS = re.compile(
    rf"(?<![\w#$.,/-]){_NUM}(?:\s*(?:-|–|/|&|(?i:and)|,)\s*{_NUM}|\s+{_NUM}(?=[\s,]))*\s+"
    rf"(?!(?i:{_ADDR_STOP_WORDS})\b)"
    r"((?:(?:[NSEW]\.?|North|South|East|West)\s+)?"
    r"(?:\d{1,3}(?i:st|nd|rd|th)|[A-Za-z][\w'’.-]*)"
    r"(?:\s+(?!(?i:" + _ADDR_STOP_WORDS + r")\b)[A-Za-z][\w'’.-]*){0,2}?)"
    r"\s+(?i:("
    + "|".join(sorted((s for s in STREET_SUFFIXES if "." not in s), key=len, reverse=True))
    + r"))\b\.?"
    r"(?:,?\s*(?:#|(?i:apt\.?|unit|suite|ste\.?))\s*\d{1,5}[A-Za-z]?\b|,\s*\d{1,4}[A-Za-z]?\b(?![:/]|[\s.-]*\d|\s*(?i:am|pm)))?"
)
# "30 Taft", "45 Mellen", "512 E. Broadway": a number then a known Boston street name, no suffix.
ADDRESS_BARE = re.compile(
    rf"(?<![\w#$.,/-]){_NUM}(?:\s*(?:-|–|/|&|and)\s*{_NUM})*\s+"
    r"((?:(?:[NSEW]\.?|North|South|East|West)\s+)?[A-Z][A-Za-z'’-]+(?:\s+[A-Z][A-Za-z'’-]+)?)(?![\w'’-])"
)

PLATE_TOKEN = r"[A-Za-z0-9]{1,10}"
PLATE_TAIL = r"(?:[ -][A-Za-z0-9]{1,5})?"
# Open311 template fields hold the plate as the whole field value.
PLATE_FIELD = re.compile(
    r"(?:Vehicle License Plate Registration|License Plate number if available)\s*:\s*"
    r"([^|\n]{1,14}?)\s*(?=\||\n|$)"
)
PLATE_CUE = re.compile(
    r"(?i:\b(?:licen[cs]e|lisence|liscense|lic|plates?|tags?|reg(?:istration|istry)?)\b\.?)"
    r"(?:(?i:\s*(?:plates?|number|num|no\.?|#|:|=|is|reads|state))|\s*(?:" + _STATE_CODES + r")\b)*"
    r"[\s:#.,=-]{0,4}"
    r"(" + PLATE_TOKEN + PLATE_TAIL + r")(?![\w/])"
)
_AFTER_STATE = (
    r"(?:\s*#|\s*(?i:state|commercial|livery))?[\s:#]{1,3}"
    r"(" + PLATE_TOKEN + PLATE_TAIL + r")(?![\w/])"
)
PLATE_STATE_CODE = re.compile(r"\b(?:" + _STATE_CODES + r")\b" + _AFTER_STATE)
PLATE_STATE_NAME = re.compile(r"(?i:\b(?:" + _US_STATES + r")\b)" + _AFTER_STATE)
STATE_NAME_WORDS = frozenset(w for name in _US_STATES.split("|") for w in name.split()[:1])
PLATE_BEFORE_CUE = re.compile(
    r"(?<![\w-])([A-Z0-9]{1,4}[ -]?[A-Z0-9]{1,4})\s+(?:(?:" + _STATE_CODES + r")\s+)?"
    r"(?i:licen[cs]e\s+)?(?i:plates?)\b"
)
PLATE_SHAPE = re.compile(
    r"(?<![\w./#-])(?:"
    r"\d[A-Z]{2,4}(?:[ -]?\d{2,3}|\d)"  # 1ABC23, 8CLG20, 4XY 567, 7EDW 20
    r"|\d{2,3}[A-Z]{2,3}\d{1,2}"  # 63GJ32, 414YG8, 912LC1
    r"|\d{3}[A-Z]{3}"  # 370ADH
    r"|\d{3} [A-Z]{2}\d"  # 965 GH2
    r")(?![\w/-])"
)
PLATE_SHAPE_STOP = re.compile(
    r"^\d+(?:ST|ND|RD|TH|AM|PM|DR|HR|HRS|FT|LB|LBS|MPH|YRS|MIN|MINS|SEC|SF|K|KG|KM|MG|ML|GB|MB)\b"
)
PLATE_LIST_SEP = re.compile(r"\s*(?:,|&|and|/)\s*")
# a vehicle named without a plate cue ("Ford van rce 076", "white camry KGB-123"): the commonest
# plate shapes, three letters and three or four digits or the reverse, in either case
VEHICLE_WORDS = word_set(
    """car cars vehicle vehicles auto van truck pickup suv sedan coupe wagon minivan jeep
    motorcycle moped scooter trailer camper rv acura audi bmw buick cadillac chevy chevrolet
    chrysler dodge fiat ford gmc honda hyundai infiniti isuzu kia lexus lincoln mazda mercedes
    mitsubishi nissan pontiac porsche subaru suzuki tesla toyota volkswagen vw volvo camry
    corolla civic altima sentra prius tacoma sienna silverado"""
)
PLATE_NEAR_VEHICLE = (
    re.compile(r"(?<![\w./#@,-])([A-Za-z]{3})[ -]?(\d{3,4})(?![\w/-])"),
    re.compile(r"(?<![\w./#@,-])(\d{3})[ -]?([A-Za-z]{3})(?![\w/-])"),
)
# three letters that name a unit, a road, a room or a date, not a plate ("apt 204", "hwy 101",
# "May 2017")
PLATE_NEAR_VEHICLE_STOP = word_set(
    """apt ste rte hwy ext rms unt blk lot bus box tel fax cal mph kms lbs hrs yrs mos min sec pts
    log jan feb mar apr may jun jul aug sep oct nov dec mon tue wed thu fri sat sun"""
)

_NAME_TOKEN = r"[^\W\d_][^\W\d_'’-]*(?:['’-][^\W\d_]+)*"
_NAME_SEQ = rf"{_NAME_TOKEN}\.?(?:[ \t]+{_NAME_TOKEN}\.?){{0,3}}"
_TITLE_ALT = "|".join(sorted(TITLES, key=len, reverse=True))
MY_NAME = re.compile(
    r"(?i:\b(?:(?:my|his|her|their|(?:caller|owner|landlord|tenant|resident|constituent)['’]?s)"
    r"\s+names?(?:\s+is|['’]s|\s*:)?))"
    rf"\s+({_NAME_SEQ})"
)
# Titles may stack: "Mr Mayor Keane", "Councilor Dr. Ruiz".
TITLE_NAME = re.compile(
    rf"(?<![\w'])((?i:{_TITLE_ALT}))\.?(?:\s+(?i:{_TITLE_ALT})\b\.?)*\s+({_NAME_SEQ})"
)
SIGNOFF = re.compile(
    r"(?i:\b(?:thanks|thank\s+you|thx|regards|sincerely|cheers|best|respectfully|hi|hello|dear|hey)\b)"
    r"(?:\s+(?:so\s+much|in\s+advance|again))?(?=[\s,!.:-])[ \t]*[,!.:-]*[ \t]*(?:\r?\n[ \t]*)*"
    rf"({_NAME_SEQ})"
)
# A verb of contact before a name: "call Nadia Ruiz", "Contacted Darnell Hughes", "Talked to Ruth".
CONTACT_NAME = re.compile(
    r"(?i:\b(?:call|contact|contacted|ask\s+for|ask|reach|text|e-?mail(?:ed)?|talked\s+to|"
    r"talk\s+to|spoke\s+(?:to|with)|speak\s+(?:to|with)|left\s+(?:a\s+)?(?:vm|voicemail|message)"
    r"(?:\s+(?:for|with))?|notified|tell|told|attn:?|cc:?|c/o|care\s+of))\s+"
    rf"({_NAME_SEQ})"
)
CALL_AT = re.compile(
    rf"(?i:\b(?:call|contact|ask\s+for|ask|reach|text))\s+({_NAME_SEQ})\s+(?i:at|@|on)\s+(?=[+(\d])"
)
# A role before a name: "the landlord who is ANTONIO LEPE", "Property owner - Tom Park".
ROLE_NAME = re.compile(
    r"(?i:\b(?:landlord|owner|manager|tenant|neighbou?r|super|superintendent|caller|constituent|"
    r"resident|contractor|driver|contact|realtor|agent|employee|worker)(?:'s\s+name)?"
    r"(?:\s+(?:who|whose\s+name)\s+is|\s+is|\s+named|\s+name)?\b)(?:[ \t]*[:=,-][ \t]*|[ \t]+)"
    rf"({_NAME_SEQ})"
)
CAP_WORD = re.compile(r"(?<![\w'’.@/-])[A-ZÀ-ÖØ-Þ][a-zà-öø-ÿ]+(?:['’-]?[A-Za-zÀ-ÖØ-öø-ÿ]+)*")
SENTENCE_START = re.compile(r"(?:^|[.!?|:;\"(\[\n]|\s-)\s*$")
AFTER_SIGNOFF = re.compile(r"(?i:thanks|thank\s+you|regards|sincerely|cheers)[\s,!.:-]*$")
AFTER_TITLE = re.compile(rf"(?<![\w'])(?i:{_TITLE_ALT})\.?[ \t]+$")
TEMPLATE_FIELD_BEFORE = re.compile(
    r"(?i:\b(?:make|model|color|colour|type of vehicle|agency name|business name|company name)"
    r"(?: of the abandoned car)?\s*:\s*)$"
)
