"""The cues of the closing-note classifier, as data (``NoteRules``): regular expressions over the
lower-cased note, in the groups the classifier's order of precedence names (see
:mod:`analyzer.outcomes.notes`). A city whose staff write otherwise gets other cues without code.

Every pattern is plain RE2 syntax (no look-arounds, no back-references): the classifier runs each
group over all distinct notes at once in Arrow's RE2 engine.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["NoteRules"]

_ACTION_VERBS = (
    r"cit(?:ed|ation|ations)|ticket(?:ed|s)?|ta+g+e*d|tags|towe?d|tow (?:requested|list)|"
    r"violations? (?:filed|issued|found|corrected)|issues found|re-?inspection|"
    r"warning (?:was |has been )?issued|permit issued|abate(?:d|ment)|corrected|"
    r"repair(?:ed|s made)|fixed|fix|patched|replaced|re-?installed|installed|re-?painted|painted|"
    r"planted|pruned|trimmed|cut|picked (?:\w+ )?up|pick (?:\w+ )?up|collected|collection|emptied|swept|"
    r"sweeper is on its way|serviced|plowed|sanded|completed|done|addressed|"
    r"taken care of|made safe|shut (?:off|down)|closed \w+ down|overtimed|timed|chalked|freed|"
    r"rmoved|taken care of|taking care of|took care of|flushed|unclogged|restored|reset|"
    r"delivered|dropped off|sealed|filled|secured|boarded up|mowed|raked|grinded|ground down|"
    r"recovered|on flatbed|implemented|adjusted|improved|brought to|tighten(?:ed)?|tgged|"
    r"resolved by|put (?:in|into) (?:the |a )?\w+ (?:box|bin|barrel|truck)|is (?:now )?complete|"
    r"sent for (?:removal|pickup|pick up|repair|maintenance|collection|service)|"
    r"(?:vehicle|car|it) (?:was )?written|written (?:up|avr)|pulled|failed inspection"
)


@dataclass(frozen=True)
class NoteRules:
    """The cues, as regular expressions over the lower-cased note (see the module docstring)."""

    # closing codes and stamps that carry no outcome, removed first
    boilerplate: tuple[str, ...] = (
        # a department's code before its own words ("Case Closed. NOVIO: No Violation Found")
        r"^(?:\s*(?:case (?:closed|resolved|noted)\b\.?|closed date\s*:\s*[0-9: .-]+))*"
        r"\s*[a-z]{3,8}:\s",
        r"\bclosed date\s*:\s*[0-9: .-]+",
        r"\bcase (?:closed|resolved|noted)\b\.?",
        # courtesy and "if it comes back" sentences name no outcome
        r"\bif you (?:feel|have|think|believe|need)\b[^.]*\.?",
        r"\b(?:for|with) (?:any )?(?:further |other )?questions\b[^.]*\.?",
        r"\b(?:please )?(?:call|contact|dial|re-?port)\b[^.]{0,40}?\bif (?:it|this|that|the|they|"
        r"there|problem|issue|condition)\b[^.]*\.?",
    )
    duplicate: tuple[str, ...] = (
        r"\bdup(?:e|licate|licated|s)?\b",
        r"\balready (?:been )?(?:submitted|reported|entered|open(?:ed)?|exists)",
        r"\bhas already been submitted\b",
        r"\bis in already\b",
        r"\bexisting (?:case|request|ticket)\b",
        r"\bpreviously (?:reported|submitted)\b",
        r"^\W*see (?:case )?#?\s*[a-z]?\d{6,}",
    )
    # negations masked before actions are looked for ("no citation issued", "not towed")
    no_sanction: tuple[str, ...] = (
        r"\bnothing (?:\w+ )?can be done\b|\bnothing we can do\b",
        r"\bno+ (?:citations?|tickets?|tags?)\b(?: (?:able to be|was|were|will be|has been|"
        r"have been))?(?: issued)?",
    )
    no_violation: tuple[str, ...] = (
        r"\bno (?:\w+ ){0,3}?v(?:io|oi)lations?\b(?: (?:was|were|has been|have been))?"
        r"(?: found| issued| filed| written)?",
    )
    negation: tuple[str, ...] = (
        r"\b(?:not|never|cannot|can ?not|can['’]t|unable to|could not|couldn['’]t|did not|didn['’]t|"
        r"won['’]t|will not|does not|do not)\s+(?:be\s+)?(?:\w+\s+)?(?:cite|cited|ticket(?:ed)?|"
        r"tag(?:ged)?|tow(?:ed)?|issued?|plow(?:ed)?|remove[ds]?|shovel(?:ed)?|clear(?:ed)?|"
        rf"be done|do|{_ACTION_VERBS})\b",
    )
    # strong actions taken on the request
    action: tuple[str, ...] = (
        rf"\b(?:{_ACTION_VERBS})\b",
        r"\bcleared (?:the|out|off|away|debris|it)\b",
        r"\b(?:officers?|supervisors?|crews?|police|bpd|tow \w+)\s+(?:\w+\s+)?moved\b",
        r"\bsent (?:a |an |the )?(?:\w+ )?(?:crew|truck|backhoe|unit|officer|inspector|sweeper|"
        r"tagger)\b",
        r"\btold (?:them|him|her|the \w+) to\b",
        r"\bhad (?:\w+ ){0,2}?(?:move|remove|fix|clean|shovel|repair)\b",
        r"\b(?:spoke|spoken|speak|talked|met|meet)\s+(?:to|with)\s+(?:\w+\s+){0,3}?"
        r"(?:owners?|managers?|contractors?|director|drivers?|workers?|company|vendor|"
        r"residents?|tenants?|landlord|operators? of|foreman|supervisor)\b",
        r"\b(?:notified|contacted|informed|told|called)\s+(?:the\s+)?(?:\w+\s+)?"
        r"(?:contractor|vendor|owner|company|landlord|manager)\b",
        r"\b(?:officer|tagger|unit|crew|sweeper|truck|inspector|enforcement)s?\s+"
        r"(?:in area\s+)?(?:was|were|has been|have been|is|are)\s+(?:just\s+)?"
        r"(?:called|sent|dispatched|notified|spoken to|instructed|assigned|on (?:its|the) way)\b",
        r"\b(?:added|put)\s+(?:this\s+|it\s+|the\s+\w+\s+)?(?:request\s+)?(?:to|on|in)\s+"
        r"(?:our|the|an|a)\s+(?:\w+\s+){0,2}?(?:list|program|schedule)\b",
        r"\bon (?:our|the) (?:\w+ )?(?:to-?do|active|work) list\b",
        r"\bput in for\b",
        r"\bremoved\b",
    )
    # an action reported only on other vehicles / properties than the reported one
    others: tuple[str, ...] = (
        r"\b(?:other|multiple|several) (?:vehicles?|cars?|properties|locations|addresses|violators)\b",
    )
    # "removed" is a finding, not an action, when someone else removed it or it already was
    not_removed: tuple[str, ...] = (
        r"\balready (?:been )?removed\b",
        r"\bremoved (?:\w+ )?previously\b",
        r"\breplaced by (?:a |the )?new\b",
        r"\bremoved (?:\w+ ){0,4}?by (?:the )?owner\b",
    )
    # polite pointers back to the same office, masked before referrals are looked for
    courtesy: tuple[str, ...] = (
        r"\b(?:please )?(?:call|contact|dial|notify|reach|e-?mail) (?:us|me|311|3-1-1|the number|"
        r"our office|this office|our)\b",
        r"\byou (?:can|may|should|could) (?:call|contact|reach|e-?mail) (?:us|me|311|the number|"
        r"our|this office)\b",
    )
    # a closing code that names the outcome whatever follows, like "Duplicate of Existing Case"
    referral_code: tuple[str, ...] = (
        r"\bcase referred to (?:an? )?external agency\b",
        r"\brefer to other agency\b",
    )
    handed_over: tuple[str, ...] = (
        r"\brefer(?:red|ral|s)?\b",
        r"\bforward(?:ed|ing)?\b",
        r"\b(?:notified|contacted|called|informed|alerted|notice given to|reported to|sent to)\s+"
        r"(?:the\s+)?(?:\w+\s+)?(?:bpd|police|911|bfd|fire|ems|mbta|dcr|isd|state|agency|"
        r"department|dept|division)\b",
        r"\b(?:bpd|police|911|9-1-1|bfd|fire department|ems|isd|dcr|mbta)\s+"
        r"(?:(?:has|have|was|were)\s+(?:been\s+)?)?(?:notified|contacted|called|informed|advised)\b",
        r"\b(?:notified|called|contacted|notify|call) 9-1-1\b",
        r"\breplaced by (?:a |the )?new\b|\breplacement case\b",
        r"\bpolice (?:handle|handles|will handle)\b",
        r"\b(?:call|called in to|called into|contact)\s+(?:directly\s+)?(?:to\s+)?911\b",
        r"\bplease (?:call|contact|dial|notify)\b",
        r"\byou (?:can|may|should|could) (?:call|contact|reach|e-?mail)\b",
        r"\b(?:bpd|police) (?:will|should)\b|\bshould be (?:notified|reported|called)\b",
        r"\b(?:will )?call (?:the )?(?:boston )?(?:fire|police|bpd|bfd)\b",
        r"\bentered in (?:isd|the system)\b",
        r"\b(?:entered|logged) (?:in|into) (?:case|the system|a new case|hansen|lagan)\b",
        r"\b(?:inspection|ispection) (?:request(?:ed)?|case)\b|\brequest (?:inspection|ispection)\b",
        r"\bnew (?:case|service request) (?:has been|was) created\b",
        r"\bsent (?:it |this )?to (?:the )?(?:appropriate|proper)\b",
    )
    nothing_found: tuple[str, ...] = (
        r"\bno (?:\w+ ){0,3}?v(?:io|oi)lations?\b",
        r"\bfound no\b|\bno (?:\w+ ){1,2}?(?:to be )?found\b",
        r"\bno (?:\w+ ){1,3}?(?:at|on|in) (?:this |the |that |thus )?(?:location|address|site|spot)\b",
        r"\bnot illegal\b|\b(?:is|are) allowed\b|\bnot impeding\b|\bpassed inspection\b",
        r"\bworking properly\b|\bin working order\b|\bfunctioning (?:properly|normally)\b",
        r"\b(?:resident|rpp|parking) (?:permit|sticker)\b|\bhas (?:a |an )?(?:\w+ ){0,2}?sticker\b",
        r"\b(?:is|are|was|were) (?:now )?clean\b",
        r"\bno (?:\w+ ){0,3}?(?:found )?in violation\b",
        r"\bno+ (?:citations?|tickets?)\b",
        r"\bnot in effect\b|\b(?:regulation|restriction|violation)s? (?:is |are |goes )?off\b",
        r"\bhas (?:a )?(?:\w+ )?(?:permit|sticker|placard)\b|\bpermitted\b",
        r"\b(?:emergency|valid|approved|active) permits?\b",
        r"\bno (?:materials?|items?|trash|debris|bags?|barrels?)(?: \w+)? "
        r"(?:out|found|present|there)\b",
        r"\bdoes not meet (?:the )?criteria\b|\bnot (?:warranted|needed|required)\b",
        r"\bremoved (?:\w+ )?previously\b",
        r"\bno (?:cause|basis|evidence|sign of|problems?|issues?|flood|ice|snow|food truck|cones?)\b",
        r"\b(?:not|nothing) in (?:any )?violation\b",
        r"\bviolation (?:is|goes) off\b",
        r"\bdoes not warrant\b",
        r"\bno (?:work|action) (?:needed|necessary|required)\b|\bnot necessary\b",
        r"\bno (?:hp|handicap(?:ped)?) (?:spot|space|sign)\b",
        r"\bnot (?:an? )?abandoned\b",
        r"\b(?:actively )?registered\b",
        r"\bvalid\b",
        r"\b(?:legally|legal) parked\b|\bparked legal(?:ly)?\b",
        r"\bin compliance\b|\ball in compliance\b",
        r"\bclear\b",
        r"\bnot (?:at|on|in) (?:the )?location\b|\bnot at loc\b",
        r"\bno longer\b",
        r"\bgone\b",
        r"\b(?:had|has|have) left\b|\btook off\b|\bleft (?:the area|before)\b",
        r"\bmoved\b",
        r"\bnothing (?:\w+ )?(?:found|out|curbside|there|at|matching|observed|seen)\b",
        r"\b(?:did not|didn['’]t|could not|couldn['’]t|unable to|cannot) (?:find|observe|see|locate)\b",
        r"\bunable to locate\b|\bcould not be (?:found|located)\b",
        r"\b(?:is|are|was|were) empty\b",
        r"\bnot (?:stolen|missing|blocked)\b",
        r"\balready (?:been )?(?:removed|shoveled|cleared|picked up|taken care|done)\b",
        r"\bshovel(?:l)?(?:ed|ing)",
        r"\badequate\b|\baccessible\b|\b(?:is|are|was|were|now) empty\b|\bempty now\b",
        r"\b(?:moving|valid|dumpster|occupancy) permits?\b",
        r"\bnot an? (?:\w+ ){0,3}?violation\b",
        r"\b(?:removed|moved) (?:\w+ ){0,4}?by (?:the )?owner\b",
        r"\ball (?:\w+ )?in (?:good )?order\b",
        r"\b(?:sidewalks?|paths?|pathway|ramps?|crosswalks?|walkways?|it|area)\s+"
        r"(?:\w+\s+){0,2}?(?:is\s+|are\s+|was\s+|were\s+|has been\s+|have been\s+)?cleared\b",
        r"\bstorm (?:is )?still\b",
        r"\bnothing (?:\w+ )?can be done\b|\bnothing we can do\b|\bno tickets? will be\b",
    )
    not_ours: tuple[str, ...] = (
        r"\bprivate(?:ly owned)? (?:property|propert(?:ies)|ways?|roads?|streets?|lots?|parking|"
        r"driveways?|land)\b",
        r"\bowners? (?:need|needs|must|is responsible|are responsible)\b",
        r"\b(?:property )?owner['’]?s? responsibility\b|\bresponsibility of the (?:\w+ )?owner\b",
        r"\bjurisdiction\b",
        r"\bnot (?:a )?city (?:issue|property|owned|responsibility|matter)\b",
        r"\bnot (?:planted|owned|maintained) by the city\b",
        r"\b(?:we are|city is) not responsible\b|\bbelongs to\b",
        r"\bnot (?:our|a city) (?:issue|problem|responsibility)\b",
        r"\b(?:mbta|railroad|state|dcr|federal|utility|private) property\b",
        r"\b(?:abutter|owner|landlord|tenant|property)s? (?:\w+ ){0,4}?(?:is|are) responsible\b",
    )
    weak_action: tuple[str, ...] = (
        r"\bwill be \w+ed\b|\byou will (?:be )?receiv",
        r"\b(?:has been|was) put in\b",
        r"\b(?:given|passed|assigned) to (?:the )?(?:\w+ )?(?:supervisor|crew|inspector|officer|unit)",
        r"\bowners? (?:will|agreed|has agreed)\b",
        r"\bwill (?:be )?(?:\w+ ){0,2}?(?:check|checked|respond|reach out|add|go|visit|look|investigate|monitor|moniter|return|time|timed|shovel|"
        r"speak|keep|continue|enforce|enforced|cut|remove|removed|moved|added|reinstalled|"
        r"repaired|replaced|serviced|service|scheduled|interviewed|inspect|inspected|made|"
        r"addressed|done|painted|collected|cleaned|picked up)\b",
        r"\benforced\b|\benforcement\b",
        r"\bkeep (?:a )?(?:close )?eye\b|\bmonitor(?:ed|ing)?\b",
        r"\b(?:supervisors?|officers?) (?:informed|notified|advised)\b",
        r"\b(?:is|are) looking (?:at|into)\b",
        r"\bcreated a case\b",
        r"\b(?:officers?|taggers?|units?|crews?|supervisors?) (?:are|is) (?:in|on) (?:the )?"
        r"(?:area|location|scene|site)\b",
        r"\basked (?:them|him|her|the \w+) to\b",
        r"\bdispatch(?:ed)?\b|\bdipatched\b|\bclean(?:ed)?\b|\bsalted\b",
        r"\bremoved\b",
    )
    weak_nothing: tuple[str, ...] = (
        r"\bcheck(?:ed|ee|eed)\b",
        r"\binspected\b",
        r"\binvestigated\b",
        r"\bcleared\b",
    )
    administrative: tuple[str, ...] = (
        r"\badministrative(?:ly)?\b",
        r"\binvalid\b",
        r"\b(?:opened|closed|entered|created) in error\b",
        r"\btest(?:ing)?\b",
        r"\bwrong (?:case )?type\b",
        r"\b(?:not enough|insufficient|more|additional) (?:information|info|details?)\b",
        r"\bwrong (?:address|location)\b|\bincorrect (?:address|location)\b",
        r"\bre-?submit\b|\bre-?file\b",
        r"\bneed(?:ed|s)? (?:an? |the )?(?:exact|correct|more|specific|proper)?\s*"
        r"(?:address|location|info|information|details?|plate)\b",
        r"\b(?:correct|exact) (?:location|address) (?:needed|required)\b",
        r"\bplease (?:elaborate|expand|clarify|specify)\b|\bexpand on\b|\bunclear\b",
        r"\bnature of the complaint\b|\bwhat is the complaint\b",
        r"\b(?:open|submit|file) a new (?:report|request)\b",
        r"\b(?:no|non working|non-working|invalid|wrong) (?:phone|contact)\b",
        r"\bcase ?closer\b|\bclose cased\b|\barchived\b",
        r"\bno access\b|\bnot home\b|\bfailed (?:apt|appointment)\b",
        r"\bno response\b|\bunable to (?:contact|reach)\b",
        r"\b(?:not in|added to) (?:the )?system\b",
        r"\bcancel(?:l)?ed\b|\bwithdrawn\b",
    )
    # a status of its own that tells the outcome, for cities without notes
    status_outcomes: tuple[str, ...] = ("duplicate", "referred")

    def groups(self) -> dict[str, str]:
        """Each cue group as one alternation (``status_outcomes`` is not a cue group)."""
        return {
            f.name: "|".join(f"(?:{p})" for p in getattr(self, f.name))
            for f in fields(self)
            if f.name != "status_outcomes"
        }
