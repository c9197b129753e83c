"""The story world: a lexicon, sentence templates and twelve plots that tell simple stories.

`story_corpus(n_chars, seed)` is a procedural corpus of simple English stories about
characters, places, objects, feelings and events. Each story keeps its facts consistent
(a hero's kite stays red all story long), sentences vary in structure, person and tense,
and the same seed gives the same text on every platform (one `random.Random`, lists only,
never set or dict iteration order). `generate_stories` also returns each story's summary,
question/answer pairs and facts, from which `story_tasks` builds labelled task sets.

Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from random import Random

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
    qa.append(("Who is the story about?", H.name))
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
    qa += [(f"What did {H.name} give {F.name}?", f"{_a(col)} {gift}"), ("Whose birthday was it?", F.name),
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
           ("What did they see at the end?", after), ("What was the weather like?", w),
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
           ("Who thought of the name?", F.name)]
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

