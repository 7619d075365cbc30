"""Is a whole customer message small talk (a greeting, thanks, a goodbye, "are you a bot?")? Then the assistant
answers it politely itself, without searching the help centre: such a message is not a question the articles could
answer, and refusing it would count a failure and record a knowledge gap for "hi".

Deterministic and deliberately narrow: the message is read as a run of known small-talk phrases from its first
word to its last (with politeness words such as "please", "so", "again" in between). One word that is not part of
a phrase ("hi, how do I reset my password?", "thanks, but it still fails") makes it a question for the engine. A
false positive is worse than a miss: a real question answered with "Hello!" loses the customer, while small talk
that reaches the engine is only refused. The phrases were written from the CLINC150 *train* small-talk intents and
everyday chat; bench/smalltalk.py measures recall and false positives on held-out sets.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Kind = Literal["greeting", "wellbeing", "thanks", "goodbye", "bot", "ack"]
MAX_WORDS = 14  # longer messages are never small talk here: they carry a request or a story



def _alt(*options: str) -> str:
    """An alternation that tries longer options first: "real person" before "real", so a phrase is read whole."""
    return "(?:" + "|".join(sorted(options, key=len, reverse=True)) + ")"


_BOT_WORDS = _alt("bot", "robot", "chatbot", "chat bot", "machine", "computer", "computer program", "program", "ai",
                  "a i", "artificial intelligence", "automated", "automated assistant", "virtual assistant",
                  "assistant", "software", "real", "real person", "real human", "human", "human being", "person",
                  "live person", "actual person", "real life person")
_A = r"(?:(?:a|an|the)\s+)?"

# (kind, phrase) in the normalised text (lower case, words separated by single spaces, no punctuation).
_PHRASES: list[tuple[Kind, str]] = [
    ("greeting", r"(?:hi|hii+|hiya|hello+|helo|hey+|heya|howdy|greetings|hola|bonjour|yo|aloha|salutations|"
                 r"good (?:morning|afternoon|evening|day)|morning|afternoon|evening|well hello|why hello)"
                 r"(?: (?:there|everyone|all|again|team|friend|folks|guys|ai|bot|assistant))?"),
    ("greeting", r"(?:is )?(?:any ?(?:one|body) (?:there|here|around)|are you there|you there)"),
    ("greeting", r"(?:nice|good|great) to (?:meet|see) you"),
    ("wellbeing", r"how (?:are|r) (?:you|u|ya)(?: doing)?(?: today| this morning| this afternoon| this evening)?|"
                  r"how(?: is|'s) it going|how(?: are|'re) things|how have you been|how(?: is|'s) your day|"
                  r"how(?: are|'re) you doing|what'?s up|whats up|sup|how do you do|hope you(?:'re| are) (?:well|good)"),
    ("thanks", r"(?:thanks|thank you|thank u|thankyou|thanx|thx|tnx|ty|cheers|ta|many thanks|much appreciated|"
               r"gracias|merci(?: beaucoup)?|much obliged|i thank you|thank you kindly|why thank you)"
               r"(?: (?:so|very|so very) much| a lot| a bunch| a million| kindly| again| anyway| anyways)*"
               r"(?: (?:for|4) (?:your|the|all the|all your) (?:help|assistance|answer|answers|info|information|"
               r"reply|response|time|support|patience)| for (?:helping|your help)(?: me)?(?: out)?(?: today)?|"
               r"(?: for)? (?:that|this|everything))?"),
    ("thanks", r"(?:i )?(?:really )?appreciate (?:it|that|this|your help|the help|your assistance|the assistance|"
               r"you helping me|what you did)|(?:your help is|that is|that's) (?:much |really |greatly )?appreciated|"
               r"appreciated|i(?:'m| am) (?:very |so |really )?(?:grateful|thankful)(?: (?:for|to) (?:you|your help|"
               r"the help))?|you(?:'ve| have) been (?:a |very |so |really )?(?:big |great |huge |very |really )?"
               r"(?:help|helpful)|(?:that|this|it) (?:was |is |has been )?(?:very |really |so |super )?(?:helpful|"
               r"helped)|(?:that|this) helps|i owe you one|you(?:'re| are) (?:the best|a star|great|awesome|amazing)"),
    ("goodbye", r"(?:bye+|goodbye|good bye|bye bye|bye-bye|buh bye|byee+|farewell|adios|ciao|cya|see ya|"
                r"so long|good ?night|nite|later|laters|peace out|tata|toodles|tootles)(?: now| for now| then)?"),
    ("goodbye", r"(?:see|talk to|speak to|chat with) (?:you|u|ya)(?: (?:later|soon|around|again|another time|"
                r"tomorrow))*|talk (?:to you )?later|catch you (?:later|around)|until next time|take care|"
                r"have a (?:nice|good|great|lovely|wonderful) (?:day|one|evening|night|weekend|afternoon|morning)|"
                r"you too|same to you|that(?:'s| is| will be|'ll be) (?:all|it|everything)(?: for (?:now|today))?|"
                r"nothing else|i(?:'m| am) (?:all )?(?:done|good|set)(?: now| for now| then)?|all done|"
                r"no (?:that's|that is) (?:all|it|everything)|i (?:have|need|must|gotta|got) to go(?: now)?|"
                r"(?:it was )?(?:nice|good|great|lovely) (?:talking|chatting|speaking) (?:to|with) you"),
    ("bot", rf"(?:so )?(?:are|r) (?:you|u) {_A}{_BOT_WORDS}(?: or {_A}{_BOT_WORDS})?|"
            rf"(?:am i|are we) (?:talking|speaking|chatting) (?:to|with) {_A}{_BOT_WORDS}(?: or {_A}{_BOT_WORDS})?|"
            rf"(?:is this|is that) {_A}{_BOT_WORDS}(?: or {_A}{_BOT_WORDS})?|(?:you(?:'re| are)|you sound like) "
            rf"{_A}{_BOT_WORDS}|what are you|who are you|who(?: am i|'m i) (?:talking|speaking|chatting) (?:to|with)|"
            r"what(?: is|'s|s) your name|whats your name|what (?:should|can|do) i call you|do you have a name|"
            r"what are you called|tell me (?:about )?(?:your name|yourself)|introduce yourself|"
            r"who (?:made|created|built|programmed|designed|developed|invented|owns|runs) you|"
            r"who (?:do|d) you work for|who is your (?:creator|maker|boss|employer)|what can you do|"
            r"what can i ask you|how (?:can|do) you help(?: me)?|what do you do"),
    ("greeting", _alt("hey hey", "hi hi", "hello hello", "heyo", "hey ya", "hiya there")),
    ("wellbeing", r"how(?: are| is|'s|s|'re)? (?:you|ya|u|things|everything|life)(?: (?:doing|doin|going|been|"
                  r"treating you|with you|going for you|today|this morning|this afternoon|this evening|my friend))*|"
                  r"how(?:'ve| have) (?:you|ya) been(?: doing)?|how(?: is|'s) (?:it|everything|life|your day)"
                  r"(?: (?:going|hanging|treating you|with you|going for you|today))*|what(?:'s| is|s) (?:new|happening|"
                  r"going on)|wh?assup|are you (?:doing )?(?:ok|okay|well|good|alright|all right)(?: today)?"),
    ("thanks", r"(?:no )?(?:thanks|thank you|thank u|ty|cheers)(?: (?:so|very|so very) much| a lot)?(?: for "
               r"(?:the|your|all the) (?:info|information|answer|answers|help|assist|assistance|reply|response|"
               r"chat|time)| for (?:answering|letting me know|talking|chatting|replying)(?: (?:to|with) me)?"
               r"(?: (?:my|that) question)?)?"),
    ("thanks", r"(?:you did a |that's a |that is a )?(?:good|great|nice) (?:job|answer)|that(?:'s| is) (?:helpful|"
               r"great|perfect|good to know)|you have my (?:sincere |deepest )?gratitude|(?:special |many |big )thanks"
               r"(?: to you)?"),
    ("goodbye", r"(?:it was |it's been |this was |that was )?(?:nice|good|great|lovely|pleasant|enjoyable|cool|fun)"
                r"(?: to)? (?:talking|chatting|speaking|conversing|talk|chat|speak|converse|catching up)(?: again)?"
                r"(?: (?:to|with) you)?(?: again| today)?|(?:great|nice|good) (?:chat|talk|conversation)|"
                r"(?:this|that|it) (?:was|has been) (?:a )?(?:nice|good|great|lovely|pleasant|fun)(?: (?:chat|talk|"
                r"conversation))?|i (?:really )?enjoyed (?:talking|chatting|speaking|our (?:talk|chat|conversation))"
                r"(?: (?:to|with) you)?|(?:i'm |i am )?glad (?:we|i) (?:got to|could) (?:talk|chat)(?: to you)?(?: again)?|"
                r"i(?:'ve| have)? (?:got|need|have) to (?:go|run|get going|leave)(?: now)?|i(?:'m| am) (?:out of here|"
                r"outta here|off|leaving(?: now)?)|i(?:'ll| will) be (?:off|leaving)(?: now)?"),
    ("bot", r"(?:if|whether) (?:you are|you're|ur) " + _A + _BOT_WORDS + r"(?: or (?:not|" + _A + _BOT_WORDS + r"))?|"
            r"(?:do|would) you (?:consider|say) (?:yourself|you are|you're) (?:to be )?" + _A + _BOT_WORDS + r"|"
            r"(?:who|what) (?:(?:formed|constructed|coded|fabricated|programmed|invented|designed|engineered|built|"
            r"crafted|developed|manufactured|made|created|makes|owns|trained|wrote) (?:you|this ai|the ai)|"
            r"(?:were|are) you (?:made|created|invented|built|designed|programmed|developed|manufactured|trained) by)|"
            r"who(?: is|'s| was) (?:your|this ai's|the ai's) (?:creator|maker|designer|manufacturer|inventor|programmer|"
            r"developer|originator|owner|boss|employer|manager|supervisor|superior)|who (?:do|are) you (?:work|working)"
            r" for|who (?:employs|owns|runs) you|who are you (?:employed|owned|run) by|do you have (?:a|an) (?:boss|"
            r"employer|name|nickname)|what(?: is|'s|s)? (?:your|the ai's) (?:full |first |real )?name|what (?:do|should|"
            r"can|may) (?:i|we|people|they) call you|(?:can|may) i (?:have|get|ask|know) your name|your name|"
            r"i (?:want|need|would like|'d like|wanna) (?:to know )?your name|what do you go by"),
    ("ack", _alt("ok", "okay", "okey", "okie", "k", "kk", "alright", "all right", "great", "cool", "perfect", "got it",
                 "understood", "sounds good", "nice", "awesome", "excellent", "wonderful", "brilliant", "fine", "noted",
                 "gotcha", "lovely", "super", "sweet", "no problem", "no worries", "fair enough", "i see", "ah", "oh",
                 "wow", "good", "very good", "good to know", "will do", "ok then", "okay then", "makes sense")),
]
# Words allowed anywhere between phrases ("ok so thanks again", "hi, bot, please").
_FILLER = r"(?:please|pls|plz|so|well|and|oh|ah|um|umm|hmm|just|again|then|very|really|ai|bot|assistant|friend|mate|" \
          r"dear|sir|madam|man|buddy|lol|haha|yes|yeah|yep|by the way|btw|if i may ask|exactly|actually|" \
          r"(?:(?:can|could|would|will) you (?:please )?)?tell me|let me know|(?:please )?tell me|i (?:want|need|would " \
          r"like|'d like|wanna|am curious|am wondering) to know|(?:may|can) i (?:know|ask)|i(?:'m| am) (?:curious|" \
          r"wondering)(?: to know)?|(?:just )?curious|clear something up)"
_COMPILED = [(kind, re.compile(rf"(?:{phrase})(?= |$)")) for kind, phrase in _PHRASES]
_FILLER_RE = re.compile(rf"{_FILLER}(?= |$)")
# When a message holds several kinds, the reply answers the one that matters most ("ok thanks bye" is a goodbye).
_PRECEDENCE: tuple[Kind, ...] = ("bot", "goodbye", "thanks", "wellbeing", "greeting", "ack")


def normalise(text: str) -> str:
    """Lower case, curly apostrophes straightened, everything but letters, digits and apostrophes a space."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("’", "'").replace("‘", "'")
    return " ".join(re.sub(r"[^\w']+|_", " ", text).replace(" ' ", " ").split())


def detect(text: str) -> Kind | None:
    """The small-talk kind when the whole message is small talk, else None (a question for the engine)."""
    words = normalise(text)
    if not words or len(words.split()) > MAX_WORDS or any(ch.isdigit() for ch in words):
        return None
    kinds: set[Kind] = set()
    pos = 0
    while pos < len(words):
        best_end, best_kind = -1, None
        for kind, pattern in _COMPILED:
            match = pattern.match(words, pos)
            if match is not None and match.end() > best_end:
                best_end, best_kind = match.end(), kind
        filler = _FILLER_RE.match(words, pos)
        if filler is not None and filler.end() > best_end:  # a politeness word, not a phrase of its own
            best_end, best_kind = filler.end(), None
        if best_end <= pos:
            return None  # a word no phrase explains: the message asks something
        if best_kind is not None:
            kinds.add(best_kind)
        pos = best_end + 1  # past the space
    if not kinds:
        return None  # only fillers ("yes", "no", "please"): an answer to something, not small talk
    return next(k for k in _PRECEDENCE if k in kinds)


# A greeting in front of a question ("Hi, how do I reset my password?"): the question is searched without it.
_OPENING = re.compile(r"^\s*(?:(?:hi|hello|hey|hiya|good (?:morning|afternoon|evening|day)|greetings)"
                      r"(?: there| all| everyone| team)?[\s,.!:;-]+)+(?=\S)", re.IGNORECASE)  # fmt: skip


def without_opening(text: str) -> str:
    """The message without a leading greeting, when a question of at least two words follows it."""
    rest = _OPENING.sub("", text, count=1)
    return rest if rest != text and len(rest.split()) >= 2 else text
