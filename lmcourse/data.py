"""Data for the course, offline by default.

- `story_corpus(n_chars, seed)`: a procedural corpus of simple English stories about
  characters, places, objects, feelings and events. Each story keeps its facts consistent
  (a hero's kite stays red all story long), sentences vary in structure, person and tense,
  and the same seed gives the same text on every platform (one `random.Random`, lists only,
  never set or dict iteration order).
- Labelled task sets drawn from the same world, each with fixed train/val/test splits:
  `sentiment_set`, `qa_set`, `summary_set`, `translation_set` (English -> simple Mandarin).
- `reviews(split)`: real-sounding product and film reviews written for this course.
- `pydoc_prose()`: real English prose from `pydoc_data.topics`, which ships with CPython.
- `load_text(name)`: "stories", "pydoc", or "tinyshakespeare" (downloaded once, checked
  against a pinned sha256, cached; offline it says where to put the file by hand).

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from random import Random

from .atomic import write_atomic

SPLITS = ("train", "val", "test")

# --------------------------------------------------------------------------------------
# The story world: a lexicon. Everything is a list or tuple so iteration order is fixed.
# --------------------------------------------------------------------------------------

GIRLS = ("Mia", "Lily", "Anna", "Lucy", "Emma", "Zoe", "Rosa", "Nora", "Ella", "Ruby",
         "Ivy", "Maya", "Sara", "Hana", "Mei", "Lena", "Alice", "Daisy", "Clara", "Amy")
BOYS = ("Tom", "Ben", "Sam", "Max", "Leo", "Jack", "Finn", "Omar", "Noah", "Hugo",
        "Kai", "Eli", "Theo", "Ravi", "Jun", "Oscar", "Felix", "Milo", "Luke", "Dan")
# kind -> (is a person, plural)
KINDS = (("girl", "boy"), ("fox", "fox"), ("rabbit", "rabbit"), ("bear", "bear"),
         ("mouse", "mouse"), ("owl", "owl"), ("duck", "duck"), ("cat", "cat"),
         ("dog", "dog"), ("hedgehog", "hedgehog"), ("squirrel", "squirrel"),
         ("frog", "frog"), ("turtle", "turtle"), ("goat", "goat"))
TRAITS = ("kind", "brave", "shy", "curious", "clever", "cheerful", "gentle", "busy",
          "careful", "funny", "quiet", "friendly", "helpful", "patient", "lively")
HOMES = ("a small house by the river", "a little cottage near the forest",
         "a flat above the bakery", "a burrow under an old oak tree",
         "a yellow house on the hill", "a houseboat on the lake",
         "a tiny hut by the sea", "a farmhouse at the end of the lane",
         "a blue house next to the school", "a nest high in a pine tree",
         "a cosy den beside the meadow", "a narrow house in the village square")
FAMILY = ("mother", "father", "grandmother", "grandfather", "big sister", "little brother", "aunt", "uncle")
# place -> spots where something can be (with their prepositions)
PLACES = (
    ("the park", ("under the swings", "behind a big bench", "next to the duck pond", "under a pile of leaves")),
    ("the forest", ("inside a hollow log", "under the tall pine trees", "behind a mossy rock", "beside the narrow path")),
    ("the beach", ("behind the rocks", "next to a sand castle", "under an old boat", "near the little pier")),
    ("the garden", ("under the rose bushes", "behind the old shed", "in the vegetable patch", "beside the watering can")),
    ("the market", ("under the fruit stall", "behind a pile of baskets", "next to the flower cart", "beside the fish stand")),
    ("the library", ("under the big armchair", "on the top shelf", "in the reading corner", "behind the desk")),
    ("the farm", ("in the hay barn", "behind the chicken coop", "at the edge of the muddy field", "next to the tractor")),
    ("the hill", ("beside the old windmill", "under a flat rock", "in the long grass", "behind a thorn bush")),
    ("the lake", ("on the wooden pier", "among the reeds", "under a rowing boat", "beside the big willow")),
    ("the school", ("in the playground", "under the coat hooks", "in the art room", "behind the gym")),
    ("the meadow", ("among the wild flowers", "beside a fallen tree", "in the tall grass", "next to the stream")),
    ("the village square", ("beside the fountain", "under the clock tower", "near the bakery window", "behind the bus stop")),
)
OBJECTS = ("ball", "kite", "hat", "book", "scarf", "toy boat", "key", "drum", "bell", "cup",
           "umbrella", "shell", "map", "blanket", "basket", "whistle", "ring", "lantern",
           "teddy bear", "paintbox", "yo-yo", "backpack", "sock puppet", "marble")
COLOURS = ("red", "blue", "green", "yellow", "orange", "purple", "pink", "white", "black",
           "brown", "silver", "golden")
FOODS = ("apples", "carrots", "honey", "cake", "soup", "berries", "cookies", "bread",
         "cheese", "pears", "pie", "pancakes", "plums", "nuts", "rice", "noodles")
BAKED = ("cake", "loaf of bread", "apple pie", "batch of cookies", "pile of pancakes", "plum tart")
GAMES = ("hide and seek", "tag", "catch", "marbles", "hopscotch", "leapfrog", "skipping")
FEARS = ("the dark", "thunder", "the big dog next door", "deep water", "the old bridge",
         "the noisy geese", "spiders", "the tall ladder")
SEEDS = (("sunflower", "a sunflower taller than the fence"), ("bean", "a bean plant full of pods"),
         ("tomato", "a bush of red tomatoes"), ("pumpkin", "a huge orange pumpkin"),
         ("carrot", "a row of sweet carrots"), ("strawberry", "a patch of strawberries"))
WEATHER = (("rain", "it began to rain", "the rain stopped", "a rainbow"),
           ("storm", "a storm rolled in", "the storm passed", "a sky full of stars"),
           ("snow", "it started to snow", "the snow stopped", "a white, sparkling world"),
           ("wind", "a strong wind blew", "the wind calmed down", "the clouds racing away"),
           ("hail", "hail began to fall", "the hail stopped", "the sun peeking out"))
TIMES = ("One morning", "One sunny day", "Early one spring morning", "On a cold winter evening",
         "One day", "After school one day", "On Saturday", "Late one afternoon",
         "One windy autumn day", "Last summer", "On the first day of the holidays", "One bright morning")
SAD = ("sad", "upset", "worried", "unhappy")
HAPPY = ("happy", "glad", "joyful", "delighted")
SAID = ("said", "said", "said", "asked", "cried", "shouted", "whispered", "called")


_MASS = ("honey", "cake", "soup", "bread", "cheese", "pie", "rice")


def _was(noun: str) -> str:
    return "was" if noun in _MASS else "were"


def _a(word: str) -> str:
    """English indefinite article for `word`."""
    return ("an " if word[0] in "aeiou" else "a ") + word


def _cap(s: str) -> str:
    return s[:1].upper() + s[1:]


@dataclass
class _Char:
    name: str
    female: bool
    kind: str

    @property
    def he(self) -> str:
        return "she" if self.female else "he"

    @property
    def him(self) -> str:
        return "her" if self.female else "him"

    @property
    def his(self) -> str:
        return "her" if self.female else "his"

    @property
    def animal(self) -> bool:
        return self.kind not in ("girl", "boy")


@dataclass
class Story:
    """One generated story: its text, a one-line summary, and question/answer pairs about it."""

    text: str
    summary: str
    qa: list[tuple[str, str]] = field(default_factory=list)
    facts: dict[str, str] = field(default_factory=dict)


class _Teller:
    """Renders sentence templates, choosing between a name and a pronoun as a person would."""

    def __init__(self, rng: Random, hero: _Char, friend: _Char) -> None:
        self.rng = rng
        self.H, self.F = hero, friend
        self.last: _Char | None = None
        self.sentences: list[str] = []

    def ref(self, c: _Char) -> str:
        other = self.F if c is self.H else self.H
        ambiguous = other.female == c.female
        if self.last is c and not ambiguous and self.rng.random() < 0.75:
            out = c.he
        elif self.last is c and ambiguous and self.rng.random() < 0.35:
            out = c.he
        elif c.kind != other.kind and self.last is not None and self.rng.random() < 0.12:
            out = "the " + ("little " if self.rng.random() < 0.5 else "") + c.kind
        else:
            out = c.name
        self.last = c
        return out

    def fill(self, template: str, **slots: str) -> str:
        teller = self

        class Slots(dict):
            def __missing__(self, key: str) -> str:
                cap = key.endswith("_")
                k = key[:-1] if cap else key
                if k in ("he", "Fhe"):
                    c = teller.F if k == "Fhe" else teller.H
                    teller.last = c
                    v = c.he
                elif k[:1] in ("H", "F") and k[1:] in ("", "n", "his", "him", "kind"):
                    c = teller.H if k[0] == "H" else teller.F
                    attr = k[1:]
                    if attr == "":
                        v = teller.ref(c)
                    elif attr == "n":
                        v = c.name
                        teller.last = c
                    else:
                        v = getattr(c, attr)
                else:
                    raise KeyError(key)
                return _cap(v) if cap else v

        return template.format_map(Slots(slots))

    def say(self, *templates: str, **slots: str) -> None:
        """Pick one template, fill it, and append it as one or more sentences."""
        s = self.fill(self.rng.choice(templates), **slots)
        self.sentences.append(_cap(s))

    def maybe(self, p: float, *templates: str, **slots: str) -> bool:
        if self.rng.random() < p:
            self.say(*templates, **slots)
            return True
        return False

    def text(self) -> str:
        return " ".join(self.sentences)


def _intro(t: _Teller, facts: dict[str, str], qa: list[tuple[str, str]]) -> None:
    H, rng = t.H, t.rng
    trait, home = rng.choice(TRAITS), rng.choice(HOMES)
    little = "little " if rng.random() < 0.5 else ""
    t.say("Once upon a time, there was {a_trait} {little}{kind} named {Hn}.",
          "There once was {a_trait} {little}{kind} called {Hn}.",
          "{Hn} was {a_trait} {little}{kind}.",
          "This is a story about {a_trait} {little}{kind} named {Hn}.",
          a_trait=_a(trait), little=little, kind=H.kind)
    facts["trait"] = trait
    qa.append((f"Who is the story about?", H.name))
    if H.animal:
        qa.append((f"What kind of animal is {H.name}?", H.kind))
    if rng.random() < 0.7:
        fam = rng.choice(FAMILY)
        t.say("{H_} lived in {home} with {his} {fam}.", "{H_} lived with {his} {fam} in {home}.",
              "Home for {Hn} was {home}, which {he} shared with {his} {fam}.",
              home=home, fam=fam, his=H.his)
        facts["home"] = home
        facts["family"] = fam
        qa.append((f"Where did {H.name} live?", home))
        qa.append((f"Who did {H.name} live with?", f"{H.his} {fam}"))
    if not H.animal and rng.random() < 0.5:
        age = rng.choice(("four", "five", "six", "seven", "eight", "nine", "ten"))
        t.say("{H_} was {age} years old.", "{H_} had just turned {age}.", age=age)
        facts["age"] = age
        qa.append((f"How old was {H.name}?", age))
    if rng.random() < 0.6:
        food = rng.choice(FOODS)
        t.say("{H_} loved {food} more than anything.", "{H_HE} liked {food} best of all.",
              "{Hn}'s favourite food was {food}.", "Nothing made {Hhim} smile like {food}.",
              food=food, H_HE=_cap(H.he))
        facts["food"] = food
        qa.append((f"What food did {H.name} like best?", food))


def _plot_lost(t: _Teller, facts, qa) -> tuple[str, str]:
    H, F, rng = t.H, t.F, t.rng
    obj, col = rng.choice(OBJECTS), rng.choice(COLOURS)
    place, spots = rng.choice(PLACES)
    s1, s2, s3 = rng.sample(spots, 3)
    t.say("{H_} had {a_col} {obj} that {he} took everywhere.",
          "{Hn}'s most precious thing was {a_col} {obj}.",
          "{H_HIS} grandmother had given {Hhim} {a_col} {obj}, and {he} loved it.",
          a_col=_a(col), obj=obj, H_HIS=_cap(H.his))
    t.say("{time}, {H} took {Hhis} {obj} to {place}.", "{time}, {H} went to {place} with {Hhis} {obj}.",
          "{time}, {H} and {Hhis} {obj} set off for {place}.",
          time=rng.choice(TIMES), obj=obj, place=place)
    t.say("{H_} played for a long time. When it was time to go home, the {obj} was gone!",
          "But when {H} looked around, {Hhis} {obj} was nowhere to be seen.",
          "{H_} put the {obj} down for a moment, and when {he} turned back, it had disappeared.",
          obj=obj)
    sad = rng.choice(SAD)
    t.say("{H_} felt very {sad}.", "{H_} was so {sad} that {he} began to cry.",
          "{Hn}'s eyes filled with tears.", sad=sad)
    t.say('"Oh no! Where is my {obj}?" {said} {Hn}.', '"I have lost my {col} {obj}," {Hn} said quietly.',
          '"Has anyone seen my {obj}?" {Hn} asked.', obj=obj, col=col, said=rng.choice(("cried", "said", "wailed")))
    t.say("Just then, {Fn} the {Fkind} came by.", "At that moment, {Hhis} friend {Fn} walked over.",
          "{Fn}, a {adj} {Fkind}, saw that something was wrong and came to help.", adj=rng.choice(TRAITS))
    t.say('"Don\'t worry, I will help you look," said {Fn}.', '"Let\'s find it together," {F} said.',
          '"Two pairs of eyes are better than one," said {Fn} with a smile.')
    t.say("First they looked {s1}, but it was not there. Then they looked {s2}.",
          "They searched {s1} and {s2}, but they found nothing.",
          "They looked {s1}. They looked {s2}. Still no {obj}.", s1=s1, s2=s2, obj=obj)
    t.say("At last, {F} spotted something {col} {s3}.", 'Suddenly {Fn} shouted, "Here it is!" The {obj} was {s3}.',
          "Finally, {Fn} found the {obj} {s3}.", col=col, obj=obj, s3=s3)
    end = rng.choice(HAPPY)
    t.say("{Hn} hugged {Fn}. \"Thank you!\" {he} said. {H_} felt {end} again.",
          "{Hn} was {end}, and {he} thanked {Fn} again and again.",
          "{H_} felt {end}. From that day on, {he} always kept the {obj} close.",
          end=end, obj=obj)
    facts.update(object=obj, colour=col, place=place, found=s3, friend=F.name, end=end)
    qa += [(f"What colour was {H.name}'s {obj}?", col), (f"Where did {H.name} lose the {obj}?", place),
           (f"Who helped {H.name} look for the {obj}?", F.name), (f"Where was the {obj} found?", s3),
           (f"What did {H.name} lose?", f"{H.his} {obj}"), (f"How did {H.name} feel at the end?", end)]
    summ = rng.choice(("{H} lost {his} {col} {obj} at {place}, and {F} helped {him} find it.",
                       "With help from {F}, {H} found the {col} {obj} {he} had lost at {place}."))
    return summ.format(H=H.name, F=F.name, his=H.his, him=H.him, he=H.he, col=col, obj=obj, place=place), "lost"


def _plot_gift(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    gift, col = rng.choice(OBJECTS), rng.choice(COLOURS)
    place = rng.choice(("the market", "the village square", "the toy shop", "the craft fair"))
    t.say("{time}, {H} remembered that it was almost {Fn}'s birthday.",
          "{time}, {H} woke up with a plan: tomorrow was {Fn}'s birthday, and {he} wanted to give {Fhim} something special.",
          "{Fn} the {Fkind} was {Hn}'s best friend, and {Fhis} birthday was coming soon.", time=rng.choice(TIMES))
    t.say("{H_} went to {place} to look for a present.", "So {H} walked all the way to {place}.",
          "{H_} counted {Hhis} coins and hurried to {place}.", place=place)
    t.say("There {he} saw {a_col} {gift}. \"{Fn} loves {col} things,\" {he} thought.",
          "{H_} looked at many things, but {he} chose {a_col} {gift}.",
          "After a long time, {H} picked {a_col} {gift}, because {col} was {Fn}'s favourite colour.",
          a_col=_a(col), gift=gift, col=col)
    t.maybe(0.6, "At home, {he} wrapped it in paper and tied it with a ribbon.",
            "{H_} wrapped the present carefully, so {Fn} would not guess what it was.")
    t.say("When {Fn} opened the present, {Fhe} smiled from ear to ear.",
          "{Fn} tore off the paper and gasped.", "{Fn} opened it slowly, and {Fhis} eyes grew wide.")
    t.say('"It is the best present ever!" said {Fn}.', '"How did you know?" {Fn} laughed. "I love it!"',
          '"Thank you, {Hn}. I will keep it forever," said {Fn}.')
    end = rng.choice(("proud", "happy", "warm inside"))
    t.say("{Hn} felt {end}.", "That made {Hn} feel {end}.", "{H_} felt {end} all evening.", end=end)
    facts.update(gift=gift, colour=col, friend=F.name, place=place, end=end)
    qa += [(f"What did {H.name} give {F.name}?", f"{_a(col)} {gift}"), (f"Whose birthday was it?", F.name),
           (f"Where did {H.name} go to find a present?", place), (f"What colour was the {gift}?", col),
           (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} gave {F.name} {_a(col)} {gift} for {F.his} birthday, and {F.name} loved it."
    return summ, "gift"


def _plot_weather(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    place, spots = rng.choice(PLACES)
    spot = rng.choice(spots)
    w, start, stop, after = rng.choice(WEATHER)
    game = rng.choice(GAMES)
    t.say("{time}, {H} and {Fn} went to {place} to play {game}.",
          "{time}, {H} met {Hhis} friend {Fn} at {place}. They wanted to play {game}.",
          "{time}, {Hn} and {Fn} the {Fkind} ran to {place}.", time=rng.choice(TIMES), place=place, game=game)
    t.say("At first the sky was clear and blue.", "The air was warm and the birds were singing.",
          "They had so much fun that they did not see the dark clouds.", "They played and laughed for hours.")
    t.say("But then {start}.", "Suddenly {start}!", "All at once, {start}.", start=start)
    feel = rng.choice(("scared", "cold", "wet", "worried"))
    t.say("{Hn} felt {feel}.", "{H_} was {feel} and wanted to go home.", "\"What do we do now?\" asked {Hn}.", feel=feel)
    t.say('"Quick, follow me!" said {Fn}, and they hid {spot}.', "{Fn} knew a good place, so they waited {spot}.",
          "They ran and sat {spot} until it was safe.", spot=spot)
    t.maybe(0.7, "While they waited, {Fn} told a funny story, and {Hn} laughed.",
            "They sang songs to pass the time.", "They shared an apple and talked about their favourite things.")
    t.say("After a while, {stop}.", "Soon {stop}.", "At last {stop}.", stop=stop)
    t.say("When they came out, they saw {after}.", "They looked up and saw {after}.", after=after)
    end = rng.choice(("happy", "calm", "amazed"))
    t.say("{Hn} felt {end}.", "\"That was an adventure,\" said {Hn}, feeling {end}.", end=end)
    facts.update(place=place, weather=w, shelter=spot, friend=F.name, game=game, end=end)
    qa += [(f"Where did {H.name} and {F.name} go?", place), (f"Where did they wait for the {w} to stop?", spot),
           (f"What did they see at the end?", after), ("What was the weather like?", w),
           (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} and {F.name} were caught in the {w} at {place} and waited {spot} until it stopped."
    return summ, "weather"


def _plot_newfriend(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    place, _ = rng.choice(PLACES)
    game = rng.choice(GAMES)
    t.say("{time}, {H} felt lonely. All {Hhis} friends were away.",
          "{time}, {H} sat alone on the steps of {Hhis} house. {He} had nobody to play with and felt lonely.",
          "{H_} had just moved to a new home, and {he} did not know anyone yet. {He} felt lonely.",
          time=rng.choice(TIMES), place=place, He=_cap(H.he))
    t.say("{H_} walked to {place} and kicked a stone.", "{H_} went to {place} anyway.",
          "So {he} wandered over to {place}.", place=place)
    t.say("There {he} saw a {adj} {Fkind} sitting by {Fhim}self.", "Near the path stood a {adj} {Fkind}.",
          "Under a tree sat a {adj} {Fkind} who looked lonely too.", adj=rng.choice(("small", "shy", "young", "quiet")))
    t.say('"Hello, I am {Hn}. What is your name?" asked {Hn}.', '{H_} took a deep breath and said, "Hi! Do you want to play?"',
          '"Hello," {H} said. "My name is {Hn}."')
    t.say('"My name is {Fn}," said the {Fkind}.', '"I am {Fn}," the {Fkind} answered softly.',
          '"{Fn}," said the {Fkind}, and smiled.')
    t.say("Then they played {game} until the sun went down.", "They played {game} all afternoon.",
          '"Let\'s play {game}!" said {Fn}, and so they did.', game=game)
    end = rng.choice(("happy", "cheerful", "glad"))
    t.say("{Hn} was not lonely any more. {H_} felt {end}.", "From then on, {Hn} and {Fn} were best friends.",
          "When {Hn} went home, {he} felt {end}. {H_} had a new friend.", end=end)
    facts.update(place=place, friend=F.name, game=game, start="lonely", end=end)
    qa += [(f"Where did {H.name} meet {F.name}?", place), ("What game did they play?", game),
           (f"How did {H.name} feel at the start?", "lonely"), (f"What was the name of the {F.kind}?", F.name)]
    summ = f"{H.name} felt lonely until {H.he} met {F.name} at {place}, and they played {game} together."
    return summ, "newfriend"


def _plot_baking(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    baked = rng.choice(BAKED)
    mistake = rng.choice((("burned", "the oven was too hot"), ("flat", "they forgot the eggs"),
                          ("salty", "they used salt instead of sugar")))
    t.say("{time}, {H} and {Fn} decided to bake {a_baked}.", "{time}, {Fn} came over to bake {a_baked} with {Hn}.",
          "{time}, {H} wanted to surprise the neighbours with {a_baked}, and {Fn} offered to help.",
          time=rng.choice(TIMES), a_baked=_a(baked))
    t.say("They mixed flour, butter and sugar in a big bowl.", "{Fn} read the recipe while {Hn} stirred.",
          "They put on aprons and got to work.")
    t.say("But the first {baked} came out {bad}, because {why}.", "Oh dear! The {baked} was {bad}. It turned out {why}.",
          baked=baked, bad=mistake[0], why=mistake[1])
    t.say("{Hn} felt {feel}.", '"It is ruined," {H} sighed.', '{H_} wanted to give up.', feel=rng.choice(("sad", "cross", "disappointed")))
    t.say('"Let\'s try again," said {Fn}. "This time we will be careful."', "{Fn} laughed and said, \"Everybody makes mistakes.\"")
    t.say("The second {baked} was perfect.", "This time the {baked} smelled wonderful.",
          "They tried again, and the new {baked} was golden and sweet.", baked=baked)
    t.say("They shared it with everyone on the street.", "They shared it with their families.",
          "They ate it in the garden with a glass of milk.")
    end = rng.choice(("proud", "happy", "full"))
    t.say("{Hn} felt {end}.", "At the end of the day, {Hn} felt {end}.", end=end)
    facts.update(baked=baked, friend=F.name, mistake=mistake[0], end=end)
    qa += [("What did they bake?", _a(baked)), ("What went wrong the first time?", mistake[0]),
           (f"Who baked with {H.name}?", F.name), (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} and {F.name} spoiled their first {baked}, tried again, and shared the second one."
    return summ, "baking"


_PREP = re.compile(r"^(under|behind|next to|beside|inside|in|on|near|among|at)\s+")


def _plot_race(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    place, spots = rng.choice(PLACES)
    goal = _PREP.sub("", rng.choice(spots)) if rng.random() < 0.6 else "the big tree"
    t.say("{time}, {H} and {Fn} had a race at {place}.", '{time}, at {place}, {Fn} said, "I bet I can beat you to {goal}!"',
          "{time}, {Hn} challenged {Fn} to a race across {place}.", time=rng.choice(TIMES), place=place, goal=goal)
    t.say("They ran as fast as they could towards {goal}.", '"Ready, steady, go!" shouted {Hn}, and off they ran towards {goal}.',
          "The finish line was {goal}.", goal=goal)
    t.say("{Fn} was ahead, but then {Fhe} tripped over a root and fell.", "Halfway there, {Fn} slipped and hurt {Fhis} knee.",
          "Suddenly {Fn} fell down with a bump.")
    t.say("{Hn} could have won, but {he} stopped.", "{H_} stopped running at once.", "{H_} did not run on.")
    t.say('"Are you all right?" asked {Hn}, and helped {Fn} up.', "{H_} helped {Fhim} stand up and brushed off the mud.",
          '"Lean on me," said {Hn}.')
    t.say("They walked to {goal} together, side by side.", "They crossed the finish line together.",
          "Slowly, they reached {goal} together.", goal=goal)
    end = rng.choice(("proud", "happy"))
    t.say("Nobody won the race, but {Hn} felt {end}.", "{Fn} said, \"You are a true friend.\" {Hn} felt {end}.", end=end)
    facts.update(place=place, goal=goal, faller=F.name, friend=F.name, end=end)
    qa += [("Who fell during the race?", F.name), ("Where was the finish line?", goal),
           ("Where was the race?", place)]
    summ = f"In a race at {place}, {H.name} stopped to help {F.name} after {F.he} fell, and they finished together."
    return summ, "race"


def _plot_fear(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    fear = rng.choice(FEARS)
    t.say("{H_} was afraid of {fear}.", "There was one thing {H} did not like: {fear}.",
          "{H_} was brave about most things, but {fear} scared {Hhim}.", fear=fear)
    t.say("{time}, {H} had to face {fear}.", "{time}, there was no way around it.", time=rng.choice(TIMES), fear=fear)
    t.say("{Hhis_} knees shook and {Hhis} heart beat fast.", "{H_} wanted to run away and hide.",
          '"I can\'t do it," {H} whispered.', Hhis_=_cap(H.his))
    t.say("{Fn} held {Hhis} hand.", "{Fn} the {Fkind} sat down next to {Hhim}.", "Then {Fn} came along.")
    t.say('"Being scared is normal," said {Fn}. "I will stay with you."',
          '"Let\'s count to ten together," {Fn} said.', '"I used to be scared too," said {Fn}.')
    t.say("Step by step, {H} faced {fear}.", "{H_} took a deep breath and tried.",
          "So {H} tried, and it was not so bad after all.", fear=fear)
    end = rng.choice(("brave", "proud", "strong"))
    t.say("{Hn} felt {end}.", "After that day, {Hn} felt {end}.", '"I did it!" said {Hn}. {H_} felt {end}.', end=end)
    facts.update(fear=fear, friend=F.name, end=end)
    qa += [(f"What was {H.name} afraid of?", fear), (f"Who helped {H.name} be brave?", F.name),
           (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} was afraid of {fear}, but with {F.name}'s help {H.he} felt {end}."
    return summ, "fear"


def _plot_garden(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    seed, result = rng.choice(SEEDS)
    t.say("{time}, {H} planted some {seed} seeds.", "{time}, {H} found a packet of {seed} seeds and planted them.",
          "{time}, {Hhis} grandfather gave {Hhim} some {seed} seeds.", time=rng.choice(TIMES), seed=seed)
    t.say("Every day, {he} watered them.", "{H_} watered them every morning and every evening.",
          "{H_} gave them water and talked to them kindly.")
    t.say("But nothing happened.", "Days went by, and nothing grew.", "For a week, the soil stayed bare.")
    t.say('"Will they ever grow?" asked {Hn}.', "{H_} felt impatient.", "{Hn} began to worry.")
    t.say('"Plants need time, so be patient," said {Fn}.', "{Fn} said, \"Be patient. Good things take time.\"",
          "{Fn} laughed. \"Be patient. Seeds are slow, but they are busy under the ground.\"")
    t.say("Then one morning, a tiny green shoot came up.", "At last, a tiny green shoot poked out of the soil.")
    t.say("By the end of the summer, there was {result}.", "Weeks later, {H} had {result}.", result=result)
    t.maybe(0.6, "{H_} gave some to {Fn}.", "{H_} shared it with {Fn} and {Fhis} family.")
    end = rng.choice(("proud", "happy", "patient"))
    t.say("{Hn} felt {end}.", "{Hn} was {end}.", end=end)
    facts.update(seed=seed, friend=F.name, result=result, end=end)
    qa += [(f"What did {H.name} plant?", f"{seed} seeds"), ("What came up first?", "a tiny green shoot"),
           (f"Who told {H.name} to be patient?", F.name), (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} planted {seed} seeds, watered them every day and grew {result}."
    return summ, "garden"


def _plot_rescue(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    place, spots = rng.choice(PLACES)
    animal, trouble, fix = rng.choice((
        ("kitten", "stuck high up in a tree", "climbed up slowly and carried it down"),
        ("baby bird", "lying on the ground with a hurt wing", "made it a soft bed in a shoebox"),
        ("lamb", "caught in a thorny hedge", "gently pulled the thorns away"),
        ("puppy", "trapped in a muddy ditch", "lowered a plank so it could climb out"),
        ("duckling", "lost and far from its mother", "carried it back to the pond"),
    ))
    t.say("{time}, {H} was walking through {place} when {he} heard a small cry.",
          "{time}, {H} and {Fn} were on their way to {place}.", "{time}, {H} went to {place} to look for {Fn}.",
          time=rng.choice(TIMES), place=place)
    t.say("There was a little {animal} {trouble}.", "{H_} looked around and saw a {animal} {trouble}.",
          'A tiny {animal} was {trouble}. "Poor thing," said {Hn}.', animal=animal, trouble=trouble)
    t.say("{H_} wanted to help, but {he} did not know how.", '"We have to help it," {Hn} said.',
          "{H_} felt worried about the little {animal}.", animal=animal)
    t.say("{Fn} had an idea.", '"I know what to do," said {Fn}.', "Luckily, {Fn} came running with a rope and a basket.")
    t.say("Together they {fix}.", "Carefully, they {fix}.", "{Fn} held the basket while {Hn} {fix}.", fix=fix)
    t.maybe(0.7, "The {animal} was safe at last.", "Soon the {animal} was warm and safe.", animal=animal)
    end = rng.choice(("proud", "happy", "relieved"))
    t.say("{Hn} felt {end}.", '"We did it!" cried {Hn}, feeling {end}.', end=end)
    facts.update(animal=animal, place=place, friend=F.name, end=end)
    qa += [("What animal needed help?", animal), ("What was wrong with the animal?", trouble),
           (f"Who helped {H.name}?", F.name), (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} and {F.name} found a {animal} {trouble} and {fix}."
    return summ, "rescue"


def _plot_visit(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    who = rng.choice([w for w in ("grandmother", "grandfather", "aunt", "uncle") if w != facts.get("family")])
    giver = facts.get("family", "mother")
    food = rng.choice(FOODS)
    place, spots = rng.choice(PLACES)
    t.say("{time}, {Hhis} {giver} gave {Hhim} a basket of {food}.", "{time}, {H} packed a basket with {food}.",
          time=rng.choice(TIMES), food=food, giver=giver)
    t.say('"Please take this to your {who}," {Hhis} {giver} said.', "It was for {Hhis} {who}, who was feeling poorly.",
          "{H_} wanted to visit {Hhis} {who}, who lived on the other side of {place}.", who=who, place=place, giver=giver)
    t.say("So {H} set off past {place}.", "The way went past {place} and the old gate.",
          "{H_} walked past {place}, humming a song.", place=place)
    t.say("On the way, {he} met {Fn} the {Fkind}.", "Halfway there, {Hhis} friend {Fn} joined {Hhim}.",
          '"Where are you going?" asked {Hhis} friend {Fn}. "To see my {who}," said {Hn}.', who=who)
    t.maybe(0.6, "They stopped to pick some flowers.", "They stopped to watch the clouds for a while.",
            "They counted the birds on the fence.")
    t.say("When they arrived, {Hhis} {who} was so glad to see them.", "{Hhis_} {who} opened the door with a big smile.",
          who=who, Hhis_=_cap(H.his))
    t.say('"{food_}! My favourite," said {Hhis} {who}.', '{Hhis_} {who} laughed and said, "You are the best."',
          "They all sat down and shared the {food}.", who=who, food=food, food_=_cap(food), Hhis_=_cap(H.his))
    end = rng.choice(("happy", "warm inside", "proud"))
    t.say("{Hn} walked home feeling {end}.", "{Hn} felt {end}.", end=end)
    facts.update(visited=who, food=food, place=place, friend=F.name, end=end)
    qa += [(f"Who did {H.name} visit?", who), ("What was in the basket?", food),
           (f"Who did {H.name} meet on the way?", F.name), (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} took a basket of {food} to {H.his} {who} and met {F.name} on the way."
    return summ, "visit"


def _plot_lostway(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    place = rng.choice(("the forest", "the hills", "the fog", "the big market", "the maze of fields"))
    sign, _ = rng.choice(PLACES[:6])
    guide = rng.choice(("the river", "the church bells", "the smell of the bakery", "the lights of the village",
                        "the stars"))
    t.say("{time}, {H} and {Fn} went exploring in {place}.", "{time}, {H} followed a butterfly deep into {place}.",
          "{time}, {H} took a new path into {place}.", time=rng.choice(TIMES), place=place)
    t.say("After a while, nothing looked familiar.", "Soon {he} did not know which way was home.",
          "The path split in two, and then in two again.")
    t.say('"I think we are lost," said {Hn}.', "{H_} was lost, and it was getting dark.",
          "{H_} felt scared. Where was home?")
    t.say('"Don\'t panic," said {Fn}. "Let\'s think."', "{Fn} took a deep breath and looked around.",
          "{Fn} said, \"Let's stop and listen.\"")
    t.say("Then they noticed {guide}.", "Far away, they could hear {guide}." if guide.endswith("bells") else "Then they spotted {guide}.",
          guide=guide)
    t.say("They followed {guide} all the way home.", "Step by step, {guide} led them home.", guide=guide)
    end = rng.choice(("relieved", "safe", "tired but happy"))
    t.say("When {H} saw {Hhis} own front door, {he} felt {end}.", "{Hn} was {end} to be home.", end=end)
    facts.update(lost_in=place, guide=guide, friend=F.name, end=end)
    qa += [(f"Where did {H.name} get lost?", place), ("What led them home?", guide),
           (f"Who was with {H.name}?", F.name), (f"How did {H.name} feel at the end?", end)]
    summ = f"{H.name} and {F.name} got lost in {place} and followed {guide} home."
    return summ, "lostway"


def _plot_pet(t: _Teller, facts, qa):
    H, F, rng = t.H, t.F, t.rng
    pet = rng.choice(("puppy", "kitten", "tortoise", "goldfish", "hamster", "parrot"))
    pname = rng.choice(("Pip", "Biscuit", "Button", "Pebble", "Sunny", "Muffin", "Ziggy", "Coco"))
    col = rng.choice(("black", "white", "brown", "golden", "grey", "orange", "spotty"))
    t.say("{time}, {H} got a new pet: a little {pet}.", "{time}, {Hhis} father came home with a box. Inside was a {pet}!",
          "{H_} had wanted a {pet} for a long time, and {time_l} {he} finally got one.",
          time=rng.choice(TIMES), time_l=rng.choice(TIMES).lower(), pet=pet)
    t.say("The {pet} had a {col} collar and bright eyes.", "It was small and {col}, with a funny tail." if pet != "goldfish"
          else "It was small and {col}, with a funny tail fin.", "It had a {col} coat and tiny paws.", pet=pet, col=col)
    t.say("{H_} could not think of a name.", '"What shall we call it?" {Hn} asked {Fn}.', "{H_} thought of a hundred names.")
    t.say('"How about {pname}?" said {Fn}.', '{Fn} said, "It looks like a {pname} to me."', pname=pname)
    t.say("So the {pet} was called {pname}.", "{Hn} loved the name, and so did the {pet}.", pet=pet, pname=pname)
    t.say("Every day, {H} fed {pname} and played with it.", "{H_} took good care of {pname}.",
          "{pname} followed {Hn} everywhere.", pname=pname)
    end = rng.choice(("happy", "proud", "lucky"))
    t.say("{Hn} felt like the luckiest {Hkind} in the world." if end == "lucky" else "{Hn} felt {end}.",
          "{Hn} felt {end}.", end=end)
    facts.update(pet=pet, pet_name=pname, colour=col, friend=F.name, end=end)
    qa += [(f"What pet did {H.name} get?", pet), (f"What was the {pet} called?", pname),
           (f"Who thought of the name?", F.name)]
    summ = f"{H.name} got a {pet}, and {F.name} helped {H.him} name it {pname}."
    return summ, "pet"


SKIES = ("grey", "blue", "pink", "pale", "cloudy", "bright")
SMELLS = ("fresh bread", "wet grass", "pine needles", "the sea", "wood smoke", "flowers", "rain")
SOUNDS = ("a blackbird singing", "the bells of the old church", "children laughing far away",
          "the wind in the trees", "a dog barking", "the river rushing over stones", "bees humming")


def _scene(t: _Teller) -> None:
    rng = t.rng
    t.say("The sky was {sky}, and the air smelled of {smell}.", "Somewhere nearby, {H} could hear {sound}.",
          "It was {temp} outside, and the {sky} sky stretched over the rooftops.",
          "The only sound was {sound}.", "Everything smelled of {smell}.",
          sky=rng.choice(SKIES), smell=rng.choice(SMELLS), sound=rng.choice(SOUNDS),
          temp=rng.choice(("warm", "chilly", "cold", "hot", "mild", "windy")))


MORALS = ("a true friend helps when things go wrong", "being kind is never wasted",
          "patience brings good things", "it is fine to be scared, as long as you try",
          "sharing makes things better", "mistakes are how we learn", "small gifts can mean a lot")


PLOTS = (_plot_lost, _plot_gift, _plot_weather, _plot_newfriend, _plot_baking, _plot_race, _plot_fear, _plot_garden,
         _plot_rescue, _plot_visit, _plot_lostway, _plot_pet)


def _make_char(rng: Random, avoid: str | None = None) -> _Char:
    female = rng.random() < 0.5
    names = GIRLS if female else BOYS
    name = rng.choice(names)
    while name == avoid:
        name = rng.choice(names)
    kinds = rng.choice(KINDS)
    kind = kinds[0] if female else kinds[1]
    return _Char(name, female, kind)


def make_story(rng: Random) -> Story:
    """One story drawn from `rng`: text, summary, QA pairs and the facts behind them.

    Derived in chapters/01_language_models.ipynb.
    """
    hero = _make_char(rng)
    friend = _make_char(rng, avoid=hero.name)
    t = _Teller(rng, hero, friend)
    facts: dict[str, str] = {"hero": hero.name, "kind": hero.kind}
    qa: list[tuple[str, str]] = []
    _intro(t, facts, qa)
    plot = rng.choice(PLOTS)
    if plot not in (_plot_lost, _plot_newfriend, _plot_visit):
        t.say("{Hhis_} best friend was {Fn}, {a_trait} {Fkind}.", "{H_} had a good friend called {Fn}.",
              "{Fn} the {Fkind} lived nearby, and {Fhe} and {Hn} were the best of friends.",
              "{Hn} often played with {Hhis} friend {Fn}.", Hhis_=_cap(hero.his), a_trait=_a(rng.choice(TRAITS)))
        qa.append((f"Who was {hero.name}'s friend?", friend.name))
    n_before = len(t.sentences)
    summary, kind = plot(t, facts, qa)
    if rng.random() < 0.4:  # a scene-setting sentence after the plot's first sentence
        scene = _Teller(rng, hero, friend)
        scene.last = t.last
        _scene(scene)
        t.sentences.insert(n_before + 1, scene.sentences[0])
    if rng.random() < 0.15:
        t.say("The moral of the story is that {m}.", "And so {Hn} learned that {m}.", m=rng.choice(MORALS))
    facts["plot"] = kind
    return Story(text=t.text(), summary=summary, qa=qa, facts=facts)


def generate_stories(n: int, seed: int = 0) -> list[Story]:
    """`n` stories from one random.Random(seed): same seed, same stories, on every platform.

    Derived in chapters/01_language_models.ipynb.
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = Random(seed)
    return [make_story(rng) for _ in range(n)]


def story_corpus(n_chars: int = 1_000_000, seed: int = 0) -> str:
    """A corpus of exactly `n_chars` characters of stories separated by blank lines.

    Stories are drawn one after another from random.Random(seed) and the last one is cut at
    `n_chars`; so a shorter corpus with the same seed is a prefix of a longer one. About
    1 MB takes well under a second. Derived in chapters/01_language_models.ipynb.
    """
    if not isinstance(n_chars, int) or n_chars < 0:
        raise ValueError(f"n_chars must be a non-negative int, got {n_chars!r}")
    rng = Random(seed)
    parts: list[str] = []
    size = 0
    while size < n_chars:
        s = make_story(rng).text
        parts.append(s)
        size += len(s) + 2
    return "\n\n".join(parts)[:n_chars]


_WORD = re.compile(r"\w+|[^\w\s]")


def words(text: str) -> list[str]:
    """Split text into words and punctuation marks ("Mia's" -> "Mia", "'", "s").

    Derived in chapters/01_language_models.ipynb.
    """
    return _WORD.findall(text)


def corpus_stats(text: str, max_n: int = 4) -> dict[str, int]:
    """Size and variety of a text: characters, words, vocabulary, distinct word and character n-grams.

    Keys: "chars", "words", "vocab" (distinct words), "char_vocab", and for n = 1..max_n
    "word_{n}grams" and "char_{n}grams" (distinct n-grams). Derived in chapters/01_language_models.ipynb.
    """
    w = words(text)
    out = {"chars": len(text), "words": len(w), "vocab": len(set(w)), "char_vocab": len(set(text))}
    for n in range(1, max_n + 1):
        out[f"word_{n}grams"] = len(set(zip(*(w[i:] for i in range(n)))))
        out[f"char_{n}grams"] = len(set(text[i : i + n] for i in range(len(text) - n + 1)))
    return out


def _split(items: list, fractions: tuple[float, float] = (0.8, 0.1)) -> dict[str, list]:
    n = len(items)
    a = int(n * fractions[0])
    b = a + int(n * fractions[1])
    return {"train": items[:a], "val": items[a:b], "test": items[b:]}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")


# --------------------------------------------------------------------------------------
# Task sets from the same world
# --------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _task_stories() -> tuple[Story, ...]:
    return tuple(generate_stories(1500, seed=20240601))


def qa_set(split: str = "train") -> list[dict[str, str]]:
    """Questions about a story with short answers: dicts with "story", "question", "answer".

    1,500 stories (seeded), split 80/10/10 by story, so no test story is seen in training;
    every question of a story is one item. Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    stories = _split(list(_task_stories()))[split]
    return [{"story": s.text, "question": q, "answer": a} for s in stories for q, a in s.qa]


def summary_set(split: str = "train") -> list[tuple[str, str]]:
    """(story, one-line summary) pairs; the same 1,500 stories and story split as `qa_set`.

    Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    return [(s.text, s.summary) for s in _split(list(_task_stories()))[split]]


_POS_SENT = (
    "{N} loved the {food} at {place}.", "{N} had a wonderful day at {place}.",
    "The {food} {was} warm and delicious.", "{N} laughed and danced all the way home.",
    "What a lovely {obj}! {N} smiled.", "{N} felt {pos} when {M} came to visit.",
    "It was the best {event} ever.", "The sun was shining and {place} looked beautiful.",
    "{N} was so {pos} with {his} new {obj}.", "Everyone enjoyed the {event} very much.",
    "{N} thanked {M} for the kind gift.", "The {food} at the {event} {was} not bad at all.",
    "{N} could not stop smiling.", "{N} did not feel lonely any more.",
    "The {obj} was perfect, and {N} loved it.", "{M} gave {N} a big hug, and {N} felt {pos}.",
    "{N} won the race and felt {pos}.", "The walk through {place} was peaceful and fun.",
)
_NEG_SENT = (
    "{N} hated the {food} at {place}.", "{N} had a terrible day at {place}.",
    "The {food} {was} cold and tasted awful.", "{N} cried all the way home.",
    "What an ugly {obj}! {N} frowned.", "{N} felt {neg} when {M} broke {his} {obj}.",
    "It was the worst {event} ever.", "The rain was cold and {place} looked gloomy.",
    "{N} was so {neg} about {his} broken {obj}.", "Nobody enjoyed the {event} at all.",
    "{M} was rude to {N}, and {N} felt {neg}.", "The {food} at the {event} {was} not good at all.",
    "{N} could not stop crying.", "{N} did not have any fun.",
    "The {obj} was broken, and {N} was {neg}.", "{M} shouted at {N}, and {N} felt {neg}.",
    "{N} lost the race and felt {neg}.", "The walk through {place} was muddy and boring.",
)
_EVENTS = ("party", "picnic", "trip", "game", "holiday", "birthday", "show", "fair")


def _sentiment_pairs() -> list[tuple[str, int]]:
    rng = Random(777)
    seen: set[str] = set()
    out: list[tuple[str, int]] = []
    target = 1500  # per class
    counts = [0, 0]
    while min(counts) < target:
        label = 1 if counts[1] < counts[0] or (counts[1] == counts[0] and rng.random() < 0.5) else 0
        if counts[label] >= target:
            label = 1 - label
        a, b = _make_char(rng), _make_char(rng)
        while b.name == a.name:
            b = _make_char(rng)
        tmpl = rng.choice(_POS_SENT if label else _NEG_SENT)
        food = rng.choice(FOODS)
        s = tmpl.format(N=a.name, M=b.name, his=a.his, food=food, was=_was(food), place=rng.choice(PLACES)[0],
                        obj=rng.choice(OBJECTS), pos=rng.choice(HAPPY + ("proud", "excited")),
                        neg=rng.choice(SAD + ("angry", "lonely")), event=rng.choice(_EVENTS))
        s = _cap(s)
        if s in seen:
            continue
        seen.add(s)
        out.append((s, label))
        counts[label] += 1
    return out


@lru_cache(maxsize=1)
def _sentiment_splits() -> dict[str, list]:
    return _split(_sentiment_pairs())


def sentiment_set(split: str = "train") -> list[tuple[str, int]]:
    """(sentence, label) pairs from the story world, label 1 = positive, 0 = negative.

    3,000 distinct sentences, balanced, split 80/10/10; includes negations such as
    "not bad at all" (positive). Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    return list(_sentiment_splits()[split])


# English -> Chinese: a bilingual lexicon and a small grammar. Every Chinese sentence is
# built from the same parse as its English one, so the pair is a true translation.
# subject: (english, chinese, third-person-singular)
_ZH_SUBJECTS = (
    ("I", "我", False), ("you", "你", False), ("he", "他", True), ("she", "她", True),
    ("we", "我们", False), ("they", "他们", False), ("Mia", "米娅", True), ("Tom", "汤姆", True),
    ("Lily", "莉莉", True), ("Ben", "本", True), ("Anna", "安娜", True), ("Sam", "萨姆", True),
    ("Lucy", "露西", True), ("Leo", "利奥", True), ("the cat", "猫", True), ("the dog", "狗", True),
    ("the teacher", "老师", True), ("my mother", "我妈妈", True), ("my father", "我爸爸", True),
    ("the little girl", "小女孩", True), ("the boy", "男孩", True), ("the children", "孩子们", False),
    ("my friend", "我的朋友", True), ("the farmer", "农民", True),
)
_ZH_PEOPLE = tuple(s for s in _ZH_SUBJECTS if s[0] not in ("I", "you", "he", "she", "we", "they",
                                                            "the cat", "the dog", "the children"))
_ZH_ADJ = (("happy", "高兴"), ("sad", "难过"), ("tired", "累"), ("hungry", "饿"), ("busy", "忙"),
           ("tall", "高"), ("kind", "善良"), ("clever", "聪明"), ("cold", "冷"), ("hot", "热"),
           ("angry", "生气"), ("thirsty", "渴"))
_ZH_FOODS = (("apples", "苹果"), ("bananas", "香蕉"), ("rice", "米饭"), ("noodles", "面条"),
             ("bread", "面包"), ("fish", "鱼"), ("carrots", "胡萝卜"), ("cake", "蛋糕"),
             ("milk", "牛奶"), ("tea", "茶"), ("eggs", "鸡蛋"), ("cheese", "奶酪"), ("soup", "汤"))
# noun: (singular, plural, chinese, measure word)
_ZH_NOUNS = (("ball", "balls", "球", "个"), ("cat", "cats", "猫", "只"), ("dog", "dogs", "狗", "只"),
             ("bird", "birds", "鸟", "只"), ("rabbit", "rabbits", "兔子", "只"), ("book", "books", "书", "本"),
             ("hat", "hats", "帽子", "顶"), ("umbrella", "umbrellas", "伞", "把"), ("key", "keys", "钥匙", "把"),
             ("chair", "chairs", "椅子", "把"), ("fish", "fish", "鱼", "条"), ("scarf", "scarves", "围巾", "条"),
             ("bicycle", "bicycles", "自行车", "辆"), ("car", "cars", "汽车", "辆"), ("flower", "flowers", "花", "朵"),
             ("map", "maps", "地图", "张"), ("table", "tables", "桌子", "张"), ("cup", "cups", "杯子", "个"),
             ("lamp", "lamps", "灯", "盏"), ("kite", "kites", "风筝", "只"), ("box", "boxes", "盒子", "个"))
_ZH_ANIMALS = tuple(x for x in _ZH_NOUNS if x[3] == "只" and x[0] != "kite")
_ZH_COLOURS = (("red", "红色"), ("blue", "蓝色"), ("green", "绿色"), ("yellow", "黄色"),
               ("white", "白色"), ("black", "黑色"))
_ZH_NUMS = (("two", "两"), ("three", "三"), ("four", "四"), ("five", "五"))
# place: (go-phrase, at-phrase, chinese, chinese locative)
_ZH_PLACES = (("to the park", "in the park", "公园", "公园里"), ("to school", "at school", "学校", "学校"),
              ("to the market", "at the market", "市场", "市场"), ("to the library", "in the library", "图书馆", "图书馆"),
              ("to the beach", "on the beach", "海边", "海边"), ("to the garden", "in the garden", "花园", "花园里"),
              ("to the kitchen", "in the kitchen", "厨房", "厨房里"), ("to the forest", "in the forest", "森林", "森林里"),
              ("to the shop", "in the shop", "商店", "商店里"), ("to the hospital", "at the hospital", "医院", "医院"))
# activity: (base, third-person, -ing, past, chinese)
_ZH_ACTS = (("read", "reads", "reading", "read", "看书"), ("swim", "swims", "swimming", "swam", "游泳"),
            ("sing", "sings", "singing", "sang", "唱歌"), ("dance", "dances", "dancing", "danced", "跳舞"),
            ("draw", "draws", "drawing", "drew", "画画"), ("run", "runs", "running", "ran", "跑步"),
            ("play football", "plays football", "playing football", "played football", "踢足球"),
            ("cook", "cooks", "cooking", "cooked", "做饭"), ("write letters", "writes letters", "writing letters", "wrote letters", "写信"))


def _be(subj: tuple) -> str:
    e, _, third = subj
    return "am" if e == "I" else ("is" if third else "are")


def _en_cap(s: str) -> str:
    return s[0].upper() + s[1:]


def _translation_pair(rng: Random) -> tuple[str, str]:
    """One English sentence and its Chinese translation from a random grammar rule."""
    S = rng.choice(_ZH_SUBJECTS)
    se, sz, third = S
    kind = rng.randrange(14)
    if kind == 0:  # S is (not) ADJ
        ae, az = rng.choice(_ZH_ADJ)
        if rng.random() < 0.3:
            return f"{_en_cap(se)} {_be(S)} not {ae}.", f"{sz}不{az}。"
        return f"{_en_cap(se)} {_be(S)} {ae}.", f"{sz}很{az}。"
    if kind == 1:  # S likes FOOD / does not like
        fe, fz = rng.choice(_ZH_FOODS)
        if rng.random() < 0.3:
            return f"{_en_cap(se)} {'does' if third else 'do'} not like {fe}.", f"{sz}不喜欢{fz}。"
        return f"{_en_cap(se)} {'likes' if third else 'like'} {fe}.", f"{sz}喜欢{fz}。"
    if kind == 2:  # S has NUM (COLOUR) NOUN
        ne, npl, nz, mw = rng.choice(_ZH_NOUNS)
        if rng.random() < 0.2:
            return f"{_en_cap(se)} {'does' if third else 'do'} not have {_a(ne)}.", f"{sz}没有{nz}。"
        has = "has" if third else "have"
        if rng.random() < 0.5:
            ce, cz = rng.choice(_ZH_COLOURS)
            return f"{_en_cap(se)} {has} {_a(ce)} {ne}.", f"{sz}有一{mw}{cz}的{nz}。"
        me, mz = rng.choice(_ZH_NUMS)
        return f"{_en_cap(se)} {has} {me} {npl}.", f"{sz}有{mz}{mw}{nz}。"
    if kind == 3:  # S went to PLACE (yesterday)
        pg, _, pz, _ = rng.choice(_ZH_PLACES)
        if rng.random() < 0.4:
            return f"{_en_cap(se)} went {pg} yesterday.", f"{sz}昨天去了{pz}。"
        return f"{_en_cap(se)} went {pg}.", f"{sz}去了{pz}。"
    if kind == 4:  # S is in PLACE
        _, pa, _, pl = rng.choice(_ZH_PLACES)
        return f"{_en_cap(se)} {_be(S)} {pa}.", f"{sz}在{pl}。"
    if kind == 5:  # S saw a (big/small) ANIMAL
        ae, _, az, mw = rng.choice(_ZH_ANIMALS)
        size = rng.choice((("", ""), ("big ", "大"), ("small ", "小")))
        return f"{_en_cap(se)} saw {_a(size[0] + ae)}.", f"{sz}看见了一{mw}{size[1]}{az}。"
    if kind == 6:  # S is ACT-ing
        act = rng.choice(_ZH_ACTS)
        return f"{_en_cap(se)} {_be(S)} {act[2]}.", f"{sz}在{act[4]}。"
    if kind == 7:  # S can ACT
        act = rng.choice(_ZH_ACTS[:7])
        if rng.random() < 0.3:
            return f"{_en_cap(se)} cannot {act[0]}.", f"{sz}不会{act[4]}。"
        return f"{_en_cap(se)} can {act[0]}.", f"{sz}会{act[4]}。"
    if kind == 8:  # Where is S?
        if se in ("I", "you", "we", "they", "the children"):
            S = rng.choice(_ZH_PEOPLE)
            se, sz, third = S
        return f"Where is {se}?", f"{sz}在哪里？"
    if kind == 9:  # Does S like FOOD?
        fe, fz = rng.choice(_ZH_FOODS)
        return f"{'Does' if third else 'Do'} {se} like {fe}?", f"{sz}喜欢{fz}吗？"
    if kind == 10:  # Is S ADJ?
        ae, az = rng.choice(_ZH_ADJ)
        if se == "I":
            S = rng.choice(_ZH_PEOPLE)
            se, sz, third = S
        return f"{_en_cap(_be(S))} {se} {ae}?", f"{sz}{az}吗？"
    if kind == 11:  # P1 and P2 are friends
        a, b = rng.sample(_ZH_PEOPLE, 2)
        return f"{_en_cap(a[0])} and {b[0]} are friends.", f"{a[1]}和{b[1]}是朋友。"
    if kind == 12:  # S will go to PLACE tomorrow
        pg, _, pz, _ = rng.choice(_ZH_PLACES)
        return f"{_en_cap(se)} will go {pg} tomorrow.", f"{sz}明天要去{pz}。"
    # kind 13: S ACTed yesterday / S ACTs every day
    act = rng.choice(_ZH_ACTS)
    if rng.random() < 0.5:
        return f"{_en_cap(se)} {act[3]} yesterday.", f"{sz}昨天{act[4]}了。"
    return f"{_en_cap(se)} {act[1] if third else act[0]} every day.", f"{sz}每天{act[4]}。"


@lru_cache(maxsize=1)
def _translation_splits() -> dict[str, list]:
    rng = Random(4242)
    seen: set[str] = set()
    pairs: list[tuple[str, str]] = []
    while len(pairs) < 3000:
        en, zh = _translation_pair(rng)
        if en not in seen:
            seen.add(en)
            pairs.append((en, zh))
    return _split(pairs)


def translation_set(split: str = "train") -> list[tuple[str, str]]:
    """(English, Chinese) sentence pairs from a bilingual lexicon and a 14-rule grammar.

    3,000 distinct English sentences (simple Mandarin with correct measure words, 很 before
    predicate adjectives, 了 for completed actions, 没有 for "not have"), split 80/10/10.
    Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    return list(_translation_splits()[split])


# --------------------------------------------------------------------------------------
# Reviews: product and film reviews written for this course (not scraped, no real people)
# --------------------------------------------------------------------------------------

# category: (positive aspects, negative aspects). Each aspect is a full sentence.
_PRODUCTS = {
    "headphones": (
        ("The sound is warm and clear, and the bass never gets muddy.",
         "They are light enough that I forget I'm wearing them on long flights.",
         "Noise cancelling is surprisingly good for the price; the office hum simply disappears.",
         "Battery life is excellent, easily a week of commuting on one charge.",
         "Pairing with my phone and laptop took seconds and they switch between them without fuss."),
        ("The left ear cup started crackling after two weeks.",
         "They press so hard on my ears that I get a headache within an hour.",
         "The bass is boomy and drowns out everything else.",
         "Bluetooth keeps dropping whenever my phone is in my pocket.",
         "The battery barely lasts an afternoon, nowhere near the advertised thirty hours."),
    ),
    "kettle": (
        ("It boils a full jug in about three minutes and is quieter than my old one.",
         "The lid opens smoothly and the handle stays cool.",
         "The water window is easy to read, even first thing in the morning.",
         "It switches off reliably the moment the water boils.",
         "No plastic taste at all, even from the very first use."),
        ("The lid sticks and I burned my fingers prying it open.",
         "It leaks from the base if you fill it past halfway.",
         "Everything I made with it tasted of plastic for weeks.",
         "It's so loud that it wakes up the whole house.",
         "The switch broke after a month, so now it just doesn't turn off on its own."),
    ),
    "backpack": (
        ("It holds my laptop, lunch and a jumper with room to spare.",
         "The straps are well padded, so it stays comfortable on a long walk.",
         "It kept everything dry through a proper downpour.",
         "The pockets are well thought out, and I can finally find my keys.",
         "The stitching feels solid and the zips run smoothly."),
        ("One of the zips came off within the first week.",
         "The straps dig into my shoulders even when it is half empty.",
         "It claims to be waterproof, but my notebook was soaked after a light shower.",
         "The laptop sleeve is too small for a standard fourteen-inch laptop.",
         "A seam split along the bottom after a month of light use."),
    ),
    "running shoes": (
        ("They are comfortable straight out of the box, with no blisters at all.",
         "The grip on wet pavement is excellent.",
         "They feel light and springy, and my knees are grateful.",
         "After three hundred kilometres they still look almost new.",
         "The fit is true to size and the heel stays locked in."),
        ("The sole started peeling away after a few runs.",
         "They run a full size small, and the exchange took weeks.",
         "I slipped twice on wet leaves; the grip is poor.",
         "They gave me blisters on both heels during my first run.",
         "They feel heavy and stiff, more like boots than trainers."),
    ),
    "desk lamp": (
        ("The light is bright but soft, and my eyes no longer feel tired in the evening.",
         "The arm stays exactly where I put it.",
         "It has a handy dimmer and a warm setting that is perfect for reading.",
         "It's sturdy, with a heavy base that never tips over.",
         "It takes up very little room on my small desk."),
        ("The light flickers constantly, which is unbearable after a few minutes.",
         "The arm slowly droops until the lamp is pointing at the desk.",
         "It's far too dim to read by, even on the highest setting.",
         "The base is so light that the lamp falls over if you touch it.",
         "The switch has a loud click and already feels loose."),
    ),
    "phone case": (
        ("My phone has survived several drops onto stone floors without a scratch.",
         "It's slim enough to slip into a jeans pocket.",
         "The buttons are still easy to press, and the cut-outs line up perfectly.",
         "The grip is just right, so the phone doesn't slide off the sofa anymore.",
         "Even after months it hasn't yellowed at all."),
        ("It turned yellow within a month.",
         "The cut-out for the camera is misaligned and blocks part of the lens.",
         "The buttons are so stiff that I can barely change the volume.",
         "It cracked at the corner the first time I dropped it.",
         "It's so slippery that my phone slides off every surface."),
    ),
    "blender": (
        ("It crushes ice in seconds and makes perfectly smooth smoothies.",
         "Cleaning it takes a minute: a drop of soap, some water, and a quick spin.",
         "It's powerful but not as loud as I feared.",
         "The jug is solid glass and feels like it will last for years.",
         "Soups come out silky smooth."),
        ("It leaves chunks of fruit in every smoothie no matter how long I run it.",
         "The motor started smelling of burning plastic on the third use.",
         "It's deafening, like a jet engine in the kitchen.",
         "The jug leaks from the bottom seal.",
         "The blades went blunt after a few weeks."),
    ),
    "coffee grinder": (
        ("The grind is even and consistent, from espresso fine to cafetière coarse.",
         "It's quick, quiet for a grinder, and easy to brush clean.",
         "My morning coffee tastes noticeably better since I switched.",
         "The settings are clearly marked and easy to repeat.",
         "It's compact and fits neatly under the kitchen cabinet."),
        ("The grind is all over the place, with dust and boulders in the same batch.",
         "Static sends coffee grounds flying all over the counter.",
         "The hopper cracked within a month.",
         "It jams every few days and I have to take it apart.",
         "The settings drift, so the same number never gives the same grind."),
    ),
}
_PROD_OPEN_POS = (
    "I bought the {cat} after reading a lot of reviews, and I'm glad I did.", "Really pleased with these {cat}.",
    "Honestly, this is one of the best purchases I have made this year.", "Not bad at all for the price.",
    "I was sceptical at first, but this won me over.", "Bought this as a gift and ended up ordering one for myself.",
    "I have been using it every day for two months now.", "Great value.",
    "My old one finally died, and this replacement is a big step up.", "I didn't expect much, to be honest, but I was wrong.",
    "Five stars, and I rarely give five stars.", "A solid, well-made product.",
)
_PROD_OPEN_NEG = (
    "I really wanted to like these {cat}.", "Very disappointed.", "Save your money.",
    "I should have listened to the other reviews.", "This looked great in the photos, but the real thing is another story.",
    "Returned after a week.", "Two stars, and that's being generous.", "Not good at all.",
    "I've had it for a month and already regret it.", "Cheaply made and it shows.",
    "I don't usually write reviews, but I had to warn people about this one.", "What a letdown.",
)
_PROD_CLOSE_POS = (
    "I would happily buy it again.", "Highly recommended.", "No regrets at all.",
    "If you are on the fence, go for it.", "Worth every penny.", "It's exactly what I needed.",
    "I've already recommended it to two friends.", "Can't complain.", "Very happy with it.",
    "It does exactly what it says, and it does it well.",
)
_PROD_CLOSE_NEG = (
    "I would not buy it again.", "Avoid.", "I've asked for a refund.", "Look elsewhere.",
    "Not worth the money, even on sale.", "It is going straight back.", "Really not recommended.",
    "I expected much better from this brand.", "Customer service didn't even reply to my email.",
    "Never again.",
)
_PROD_CAVEAT = (  # a small complaint inside a positive review
    "The only downside is the short cable, but I can live with that.", "The instructions were useless, but it was easy to figure out.",
    "The box was a bit battered when it arrived, but nothing inside was damaged.", "It's a little pricey, but you get what you pay for.",
    "The colour is slightly darker than in the pictures, which doesn't bother me.", "Delivery took longer than promised, but it was worth the wait.",
)
_PROD_FAINT_PRAISE = (  # a small compliment inside a negative review
    "It looks nice, I'll give it that, but looks aren't everything.", "The packaging was lovely, which makes the product even more disappointing.",
    "Delivery was quick, and that's the only good thing I can say.", "The colour is nice, but that's about all it has going for it.",
    "It was cheap, but not cheap enough to be worth it.", "It worked fine for the first few days, and then it didn't.",
)

_FILM_TITLES = ("The Quiet Harbour", "Paper Moons", "Last Train to Marlow", "The Glass Orchard", "Northern Lights",
                "A Winter's Promise", "The Clockmaker's Daughter", "Salt and Smoke", "Into the Pines",
                "The Long Way Home", "Midnight at the Lighthouse", "Seven Small Fires", "The Forgotten Garden Party",
                "Rivers of Iron", "Blue Hour", "The Lantern Keeper")
_FILM_GENRES = ("thriller", "drama", "comedy", "family film", "sci-fi film", "mystery", "romantic comedy", "adventure film")
_FILM_OPEN_POS = (
    "{title} is a small gem.", "I went into {title} with low expectations and came out grinning.",
    "What a lovely surprise {title} turned out to be.", "{title} is the best {genre} I've seen in years.",
    "I've now seen {title} twice, and it was even better the second time.", "Not bad at all: {title} is a smart, warm {genre}.",
    "{title} deserves a much bigger audience.", "I didn't think a {genre} could still move me, but {title} did.",
)
_FILM_OPEN_NEG = (
    "{title} is a mess.", "I really wanted to enjoy {title}, but I kept checking my watch.",
    "{title} is two hours I will never get back.", "What a disappointment {title} turned out to be.",
    "{title} is the weakest {genre} I've seen in a long time.", "I walked out of {title} halfway through.",
    "Not good: {title} wastes a great premise.", "Everyone told me to see {title}; I wish they hadn't.",
)
_FILM_ASPECT_POS = (
    "The lead gives a quiet, honest performance that carries the whole film.", "The script is sharp and often very funny.",
    "Every shot looks like a painting.", "The music swells at exactly the right moments without ever feeling cheap.",
    "The pacing is perfect; two hours flew by.", "The ending is earned and genuinely moving.",
    "The supporting cast is just as good, especially the grandmother.", "The twist surprised me, and it made sense afterwards.",
    "It's funny without being silly and sad without being gloomy.", "The dialogue feels natural, like real people talking.",
)
_FILM_ASPECT_NEG = (
    "The acting is wooden, and nobody seems to believe their own lines.", "The plot has holes you could drive a bus through.",
    "The pacing is painfully slow; nothing happens for the first hour.", "The music is so loud that I couldn't hear the dialogue.",
    "The ending comes out of nowhere and makes no sense.", "The jokes fall flat, one after another.",
    "The characters are paper-thin, so I never cared what happened to them.", "You can see the twist coming from the first scene.",
    "The dialogue is clumsy and full of clichés.", "It looks cheap, with murky lighting and shaky camera work.",
)
_FILM_CAVEAT = (
    "It drags a little in the middle, but the last act more than makes up for it.", "The villain is a bit cartoonish, but it hardly matters.",
    "A couple of scenes run too long, but that's a small complaint.", "The opening is slow, so stick with it.",
)
_FILM_FAINT_PRAISE = (
    "The costumes are beautiful, but that's not enough to save it.", "There is one good scene near the end, but it comes far too late.",
    "The soundtrack is decent, which only makes the rest more frustrating.", "The lead tries hard, but the script gives her nothing to work with.",
)
_FILM_CLOSE_POS = ("Go and see it.", "Highly recommended.", "I'll be thinking about it for days.", "A must-see.",
                   "Bring tissues.", "I can't wait to watch it again.", "Perfect for a rainy Sunday.")
_FILM_CLOSE_NEG = ("Skip it.", "Not recommended.", "Wait until it's free on TV, or better, don't bother.",
                   "I can't believe it got good reviews.", "A waste of a great cast.", "Save your money.", "Avoid.")

# Standalone reviews, written whole, with the hard cases: negation, sarcasm, contrast.
_REVIEWS_STANDALONE = (
    ("Not bad at all! I expected a cheap toy and got a solid little speaker that fills the room.", 1),
    ("I can't say I was disappointed. It does everything the description promises.", 1),
    ("I was ready to hate this film, and instead I laughed the whole way through.", 1),
    ("Never have I been so happy with a kettle. Yes, a kettle.", 1),
    ("It isn't perfect, but it's the best blender I've owned, and I've owned a few.", 1),
    ("Doesn't look like much, but the battery lasts forever and the sound is lovely.", 1),
    ("Zero complaints after six months of daily use.", 1),
    ("My daughter hasn't taken these headphones off since her birthday.", 1),
    ("Nothing fancy, just a reliable lamp that does its job without any drama.", 1),
    ("I didn't think I would cry at a cartoon about a lost sock, but here we are.", 1),
    ("Slow start, brilliant finish. The last twenty minutes are unforgettable.", 1),
    ("Not the prettiest backpack in the shop, but nothing I've owned has been tougher.", 1),
    ("Honestly, I can't find anything wrong with it.", 1),
    ("The critics hated it, and they were wrong. It's a warm, clever film with a big heart.", 1),
    ("Arrived early, works perfectly, and the price was half what I paid for my last one.", 1),
    ("You won't regret this one.", 1),
    ("It's hard to believe something this good costs so little.", 1),
    ("I wasn't expecting much from a sequel, but this one is even better than the original.", 1),
    ("Never had a single problem with it. Still going strong after a year.", 1),
    ("Not a single dull moment in two hours.", 1),
    ("Oh great, another phone case that cracks the first time you drop it.", 0),
    ("Five stars for the packaging, zero for what was inside.", 0),
    ("If you like watching paint dry, this is the film for you.", 0),
    ("It isn't terrible, it's just boring, and boring is worse.", 0),
    ("Not the worst kettle I've ever owned, but it's close.", 0),
    ("I really wanted it to be good. It isn't.", 0),
    ("Looks great, sounds awful.", 0),
    ("The trailer was better than the film. Much better.", 0),
    ("Lasted exactly one week past the return window. Funny, that.", 0),
    ("It's not that the shoes are uncomfortable; it's that they're painful.", 0),
    ("I can't recommend this to anyone, not even someone I dislike.", 0),
    ("Beautiful design, shame it doesn't actually work.", 0),
    ("Half the buttons didn't work out of the box, and the other half stopped working soon after.", 0),
    ("No plot, no jokes, no reason to exist.", 0),
    ("The only thing this lamp lights up is my regret.", 0),
    ("Hardly worth the box it came in.", 0),
    ("I expected nothing and was still let down.", 0),
    ("It's not even good enough to be bad in a fun way.", 0),
    ("Stopped charging after three weeks. Seller doesn't answer.", 0),
    ("Would give zero stars if I could.", 0),
)


def _compose_review(rng: Random, label: int) -> str:
    pos = label == 1
    if rng.random() < 0.55:  # product
        cat = rng.choice(sorted(_PRODUCTS))
        good, bad = _PRODUCTS[cat]
        opener = rng.choice(_PROD_OPEN_POS if pos else _PROD_OPEN_NEG)
        if "{cat}" in opener and not cat.endswith("s"):
            opener = opener.replace("these {cat}", "this {cat}")
        parts = [opener.format(cat=cat)]
        parts += rng.sample(good if pos else bad, rng.choice((1, 2, 2, 3)))
        if rng.random() < 0.35:
            parts.append(rng.choice(_PROD_CAVEAT if pos else _PROD_FAINT_PRAISE))
        if rng.random() < 0.8:
            parts.append(rng.choice(_PROD_CLOSE_POS if pos else _PROD_CLOSE_NEG))
    else:
        title, genre = rng.choice(_FILM_TITLES), rng.choice(_FILM_GENRES)
        parts = [rng.choice(_FILM_OPEN_POS if pos else _FILM_OPEN_NEG).format(title=title, genre=genre)]
        parts += rng.sample(_FILM_ASPECT_POS if pos else _FILM_ASPECT_NEG, rng.choice((1, 2, 2, 3)))
        if rng.random() < 0.35:
            parts.append(rng.choice(_FILM_CAVEAT if pos else _FILM_FAINT_PRAISE))
        if rng.random() < 0.7:
            parts.append(rng.choice(_FILM_CLOSE_POS if pos else _FILM_CLOSE_NEG))
    return " ".join(parts)


@lru_cache(maxsize=1)
def _review_splits() -> dict[str, list]:
    rng = Random(909)
    by_label: dict[int, list[str]] = {0: [], 1: []}
    seen: set[str] = set()
    for text, label in _REVIEWS_STANDALONE:
        by_label[label].append(text)
        seen.add(text)
    for label in (0, 1):
        while len(by_label[label]) < 200:
            r = _compose_review(rng, label)
            if r not in seen:
                seen.add(r)
                by_label[label].append(r)
    splits: dict[str, list] = {s: [] for s in SPLITS}
    for label in (0, 1):
        items = by_label[label][:]
        rng.shuffle(items)
        parts = _split(items, (0.7, 0.15))
        for s in SPLITS:
            splits[s] += [(t, label) for t in parts[s]]
    for s in SPLITS:
        rng.shuffle(splits[s])
    return splits


def reviews(split: str = "train") -> list[tuple[str, int]]:
    """(review, label) pairs, label 1 = positive, 0 = negative: 400 product and film reviews.

    Written for this course: 40 whole reviews with negation, contrast and sarcasm ("not bad
    at all", "five stars for the packaging, zero for what was inside") plus reviews composed
    from hand-written sentences about eight products and sixteen made-up films. Balanced,
    split 70/15/15 within each label (280/60/60). Derived in chapters/01_language_models.ipynb.
    """
    _check_split(split)
    return list(_review_splits()[split])


# --------------------------------------------------------------------------------------
# Real prose: Python's own documentation, shipped with CPython
# --------------------------------------------------------------------------------------

_UNDERLINE = re.compile(r"^[*=\-^~#+]{3,}$")


@lru_cache(maxsize=1)
def pydoc_prose() -> str:
    """English prose from the Python reference manual (`pydoc_data.topics`), cleaned.

    Topics in sorted order; section underlines, indented code and grammar blocks and
    single-line headings are dropped, each paragraph is re-flowed onto one line, and
    paragraphs are separated by blank lines. About 0.3 MB; the exact text depends on the
    Python version. Derived in chapters/01_language_models.ipynb.
    """
    from pydoc_data.topics import topics

    paragraphs: list[str] = []
    seen: set[str] = set()
    for key in sorted(topics):
        para: list[str] = []
        indent = 0

        def flush() -> None:
            p = re.sub(r"\s+", " ", re.sub(r"^[*-] ", "", " ".join(para)))  # bullet marks go
            para.clear()
            if p in seen or len(p.split()) < 6 or not p.endswith((".", ":", ")")):
                return
            if ">>>" in p or "::=" in p or "..." in p:
                return
            letters = sum(ch.isalpha() or ch in " ,.;:'\"()-" for ch in p)
            if letters / len(p) < 0.9:
                return  # code, tables, grammar
            seen.add(p)
            paragraphs.append(p)

        for line in topics[key].split("\n"):
            stripped = line.strip()
            ind = len(line) - len(line.lstrip())
            if not stripped or _UNDERLINE.match(stripped) or (para and ind != indent and not stripped[:1].islower()):
                flush()
            if not stripped or _UNDERLINE.match(stripped):
                continue
            if not para:
                indent = ind
            para.append(stripped)
        flush()
    return "\n\n".join(paragraphs)


# --------------------------------------------------------------------------------------
# Downloadable texts (never at import, never in a chapter by default)
# --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Remote:
    """A downloadable text pinned by size and sha256."""

    url: str
    filename: str
    sha256: str
    size: int


REMOTES = {
    "tinyshakespeare": Remote(
        url="https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt",
        filename="tinyshakespeare.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        size=1_115_394,
    ),
}
DATA_ENV = "LMCOURSE_DATA"


class DownloadError(RuntimeError):
    """A download failed, or what arrived does not match the pinned checksum.

    The message names the URL and the cache path where the file can be placed by hand.
    """


def cache_dir() -> Path:
    """Where downloads are cached: $LMCOURSE_DATA, else the platform's user cache dir + /lmcourse.

    Linux: $XDG_CACHE_HOME or ~/.cache; macOS: ~/Library/Caches; Windows: %LOCALAPPDATA%.
    Derived in chapters/01_language_models.ipynb.
    """
    env = os.environ.get(DATA_ENV)
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "lmcourse"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def download(name: str, url: str | None = None, timeout: float = 30.0) -> Path:
    """Return the cached path of remote text `name`, downloading it first if needed.

    The URL is `url`, else $LMCOURSE_<NAME>_URL, else the canonical one. The bytes must
    match the pinned size and sha256, else DownloadError and nothing is cached; the file is
    written to a temporary file in the cache dir and moved into place with os.replace, so a
    crash never leaves a half-written file. Derived in chapters/01_language_models.ipynb.
    """
    if name not in REMOTES:
        raise ValueError(f"unknown remote text {name!r}; known: {sorted(REMOTES)}")
    r = REMOTES[name]
    folder = cache_dir()
    path = folder / r.filename
    stale = ""
    if path.exists():
        data = path.read_bytes()
        if len(data) == r.size and _sha256(data) == r.sha256:
            return path
        stale = f" The file now at {path} does not match the pinned sha256 {r.sha256} (a partial or edited copy?)."
    url = url or os.environ.get(f"LMCOURSE_{name.upper()}_URL") or r.url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = resp.read()
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DownloadError(
            f"could not download {name!r} from {url} ({e}). If you are offline, download the file "
            f"elsewhere and place it by hand at {path} (or set {DATA_ENV} to a folder that holds {r.filename})."
            + stale
        ) from e
    digest = _sha256(data)
    if len(data) != r.size or digest != r.sha256:
        raise DownloadError(
            f"checksum mismatch for {name!r} from {url}: got {len(data)} bytes with sha256 {digest}, "
            f"expected {r.size} bytes with sha256 {r.sha256}; nothing was cached."
        )
    write_atomic(path, data)
    return path


def load_text(name: str, url: str | None = None) -> str:
    """A named text: "stories" (1 MB story corpus, seed 0), "pydoc" (Python docs prose), or
    "tinyshakespeare" (downloaded once and cached, see `download`).

    Derived in chapters/01_language_models.ipynb.
    """
    if name == "stories":
        return story_corpus()
    if name == "pydoc":
        return pydoc_prose()
    if name in REMOTES:
        return download(name, url=url).read_text(encoding="utf-8")
    raise ValueError(f"unknown text {name!r}; choose 'stories', 'pydoc' or one of {sorted(REMOTES)}")
