"""English -> Chinese sentence pairs: a bilingual lexicon and a 14-rule grammar.

Every Chinese sentence is built from the same parse as its English one, so the pair is a
true translation. Derived in chapters/01_language_models.ipynb.
"""
from __future__ import annotations

from functools import lru_cache
from random import Random

from .splits import _check_split, _split
from .stories import _a

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
