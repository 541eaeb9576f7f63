"""Tables of the demo sample (worker.demo.data): countries, company and people names, segments."""

from __future__ import annotations

import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class Country:
    """Where demo companies are: region and CRM territory, domain suffixes, legal forms, names."""

    name: str
    region: str
    territory: str
    weight: int  # share of the sample's accounts
    suffixes: tuple[str, ...]  # public suffixes the companies' domains end with
    legal_forms: tuple[str, ...]
    language: str  # key of PEOPLE
    stems: tuple[str, ...]  # first part of company names


def _rows(table: str, separator: str) -> list[list[str]]:
    """The rows of a text table, split on `separator`; an indented line continues the one above."""
    lines: list[str] = []
    for line in table.strip("\n").splitlines():
        if line.startswith(" "):
            lines[-1] += " " + line.strip()
        else:
            lines.append(line)
    return [[field.strip() for field in line.split(separator)] for line in lines]


def _items(text: str) -> tuple[str, ...]:
    """The items of a |-separated table field ("Ltd|plc" -> ("Ltd", "plc"))."""
    return tuple(item.strip() for item in text.split("|"))


# A country a row: name; region; CRM territory; weight (its share of the sample's accounts); the
# public suffixes its companies' domains end with; legal forms; language (a key of PEOPLE); and,
# on the indented lines below, the stems its company names start with.
_COUNTRY_TABLE = """
United States; AMER; NA; 24; com io us; Inc.|LLC|Corp.|Co.; en;
    Harper & Quinn|Baker, Lowe & Partners|Blue Ridge|Summit|Redwood|Lakeshore|Ironclad|Northwind|
    Cascade|Granite State|Silverline|Brightpath|O'Malley|Keystone|Prairie|Hudson Valley|Crescent|
    Liberty Bell|Pioneer|Sierra|Atlas|Bayview|Evergreen|Maple & Main|Copperfield|Sunbelt|
    Great Lakes|Magnolia|Lone Star|Big Sky
Canada; AMER; NA; 3; ca com; Ltd.|Inc.; en;
    Maple Leaf|Laurentian|Québec Nord|Montréal Bay|Okanagan|Fraser|Algonquin|Yukon
Brazil; AMER; LATAM; 3; com.br; Ltda.|S.A.; pt;
    São Paulo|Paraná|Açaí do Norte|Ipanema|Florianópolis|Goiânia|Amazônia|Belém
Mexico; AMER; LATAM; 2; com.mx; S.A. de C.V.; es;
    Querétaro|Monterrey|Mérida|Oaxaca|Yucatán|Sonora|Tulum
United Kingdom; EMEA; UK&I; 9; co.uk com; Ltd|plc|LLP; en;
    Thames|Pennine|Whitcombe & Sons|Cotswold|Harrow|Albion|Sterling|Kensington|Fenwick|Ashdown|
    Brompton|Mersey|Highland|Caledonian|Wessex|St. Ives
Ireland; EMEA; UK&I; 2; ie; Ltd|DAC; en;
    Liffey|Shannon|O'Brien & Daughters|Connacht|Wicklow|Galway Bay
France; EMEA; France; 8; fr com; SA|SAS|SARL; fr;
    Société Lefèvre|Lefèvre & Fils|Éditions Mercier|Groupe Dubois|Besançon|Orléans|Café "Le Zinc"|
    Côte d'Azur|Nîmes|Générale d'Équipement|Beaumont|Château-Thierry|Société Bretonne|
    Garnier-Roussel|Île-de-France
Germany; EMEA; DACH; 9; de com; GmbH|AG|GmbH & Co. KG|SE; de;
    Müller & Söhne|Weißbach|Schäfer + Partner|Grünwald|Rheinland|Nordstern|Köln|Düsseldorfer|
    Bergmann|Löwenthal|Schwarzwald|Brückner|Fränkische|Hansa|Münchner
Austria; EMEA; DACH; 2; at; GmbH|AG; de;
    Wiener|Tiroler|Kärntner|Grazer|Salzach|Wörthersee
Switzerland; EMEA; DACH; 3; ch; AG|SA|GmbH; de;
    Zürcher|Genève|Bern|Matterhorn|Luzerner|Thurgau|Basler|Engadin
Spain; EMEA; Southern Europe; 4; es; S.L.|S.A.; es;
    Construcciones Málaga|Señorío de Córdoba|Peñalara|Cádiz|Logroño|Navarra|Alcalá|Ibérica|Asturias
Italy; EMEA; Southern Europe; 4; it; S.p.A.|S.r.l.; it;
    Fratelli Rossi|Officine Città|Caffè Società|Torino|Perugia|Brescia|Lucca|Ferrara|Sant'Elia
Netherlands; EMEA; Benelux; 4; nl; B.V.|N.V.; nl;
    Van der Berg & Zn.|De Vries|Zuiderzee|Oranje|Delftse|Hollandse|IJssel|Utrechtse
Sweden; EMEA; Nordics; 3; se; AB; nordic;
    Malmö Mekaniska|Göteborgs|Norrland|Västerås|Öresund|Skåne|Älvsborg
Norway; EMEA; Nordics; 2; no; AS|ASA; nordic;
    Tromsø|Ålesund Marine|Bergens|Fjordkraft|Nordlys|Lofoten
Denmark; EMEA; Nordics; 2; dk; A/S|ApS; nordic;
    Århus|Jysk Ø|Københavns|Fyns|Øresundsbro|Skagen
Poland; EMEA; CEE; 3; pl com.pl; Sp. z o.o.|S.A.; pl;
    Kraków|Łódź|Gdańsk|Wrocławskie|Poznań|Żywiec|Śląsk|Mazowsze
Türkiye; EMEA; Türkiye & ME; 2; com.tr; A.Ş.|Ltd. Şti.; tr;
    İstanbul|Anadolu|Ege|Çukurova|İzmir|Boğaziçi|Karadeniz
Japan; APAC; Japan; 5; co.jp jp; K.K.|Co., Ltd.; ja;
    Ōsaka Seimitsu|Tōkyō|Kōbe Shōji|Tōhoku|Kyūshū|Hokkaidō|Nagoya|Sapporo|Yokohama|Chūbu
Australia; APAC; ANZ; 4; com.au; Pty Ltd; en;
    Southern Cross|Coral Coast|Kookaburra|Murray River|Outback|Tasman|Bondi|Kimberley
New Zealand; APAC; ANZ; 1; co.nz; Limited; en;
    Tāmaki|Aoraki|Kiwi Coast|Waikato|Ōtautahi|Rotorua
Singapore; APAC; SEA; 2; com.sg sg; Pte. Ltd.; en;
    Lion City|Merlion|Straits|Jurong|Sentosa|Tanjong Pagar
India; APAC; South Asia; 3; co.in in; Pvt. Ltd.|Ltd.; hi;
    Sahyadri|Shree Ganesh|Bharat|Kaveri|Deccan|Himalaya|Narmada|Konkan
"""


def _country(row: list[str]) -> Country:
    """One _COUNTRY_TABLE row as a Country."""
    name, region, territory, weight, suffixes, forms, language, stems = row
    return Country(
        name, region, territory, int(weight), tuple(suffixes.split()), _items(forms), language,
        _items(stems),
    )  # fmt: skip


COUNTRIES = tuple(_country(row) for row in _rows(_COUNTRY_TABLE, ";"))

# industry -> (weight, words that end company names in it)
INDUSTRIES: dict[str, tuple[int, tuple[str, ...]]] = {
    "Software": (16, ("Software", "Systems", "Labs", "Cloud", "Digital", "Technologies")),
    "Fintech": (6, ("Pay", "Fintech", "Payments", "Ledger")),
    "Banking": (5, ("Bank", "Bancorp", "Savings", "Trust")),
    "Financial Services": (6, ("Capital", "Partners", "Asset Management", "Advisors")),
    "Insurance": (4, ("Insurance", "Assurance", "Mutual")),
    "Healthcare": (6, ("Health", "Clinics", "Care", "Medical")),
    "Pharmaceuticals": (4, ("Pharma", "Therapeutics", "Laboratories")),
    "Biotechnology": (3, ("Bio", "Biosciences", "Genomics")),
    "Manufacturing": (10, ("Industries", "Manufacturing", "Precision", "Works", "Tools")),
    "Automotive": (4, ("Motors", "Automotive", "Auto Parts")),
    "Logistics": (6, ("Logistics", "Freight", "Shipping", "Transport")),
    "Retail": (6, ("Retail", "Stores", "Outfitters", "Market")),
    "Food & Beverage": (4, ("Foods", "Brewing", "Coffee", "Dairy")),
    "Energy": (4, ("Energy", "Power", "Solar", "Renewables")),
    "Telecommunications": (3, ("Telecom", "Networks", "Mobile")),
    "Media": (3, ("Media", "Studios", "Publishing")),
    "Education": (3, ("Learning", "Academy", "Education")),
    "Construction": (4, ("Construction", "Builders", "Engineering")),
    "Consumer Goods": (3, ("Brands", "Home", "Goods")),
}

# language -> (first names, last names)
PEOPLE: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "en": (("Olivia", "James", "Zoë", "Liam", "Siobhán", "Noah", "Amelia", "Ethan", "Chloé"),
           ("Smith", "O'Connor", "Brown", "Nguyen", "Patel", "Walker", "Hughes", "Kowalski")),
    "fr": (("François", "Amélie", "Hélène", "Jérôme", "Léa", "Noël", "Inès", "Benoît"),
           ("Lefèvre", "Moreau", "Dubois", "Girard", "Rousseau", "Bérénger", "Fontaine")),
    "de": (("Jürgen", "Björn", "Anja", "Jörg", "Lena", "Matthias", "Käthe", "Uwe"),
           ("Müller", "Schäfer", "Weiß", "Groß", "Köhler", "Neumann", "Schröder")),
    "es": (("José", "María", "Lucía", "Álvaro", "Sofía", "Íñigo", "Andrés", "Begoña"),
           ("García", "Martínez", "Núñez", "Peña", "López", "Ibáñez", "Sánchez")),
    "pt": (("João", "Ana", "Luís", "Conceição", "Tomás", "Inês", "Sebastião"),
           ("Gonçalves", "Araújo", "Simões", "Magalhães", "Silva", "Conceição")),
    "it": (("Niccolò", "Giulia", "Matteo", "Chiara", "Lorenzo", "Francesca", "Nicolò"),
           ("Rossi", "Bianchi", "Esposito", "D'Angelo", "Romano", "Colombo", "Galli")),
    "nl": (("Daan", "Sanne", "Joëlle", "Bram", "Lotte", "Sem", "Femke"),
           ("de Vries", "van Dijk", "Jansen", "van der Berg", "Bakker", "Visser")),
    "nordic": (("Søren", "Åsa", "Björn", "Maja", "Øystein", "Linnéa", "Mikael", "Ingrid"),
               ("Andersson", "Johansen", "Sørensen", "Lindqvist", "Østergaard", "Ålund")),
    "pl": (("Łukasz", "Małgorzata", "Paweł", "Zofia", "Wojciech", "Agnieszka", "Michał"),
           ("Kowalski", "Wiśniewska", "Wójcik", "Zieliński", "Szymańska", "Dąbrowski")),
    "tr": (("Çağla", "Emre", "Gökhan", "Şule", "İbrahim", "Ayşe", "Oğuz"),
           ("Yılmaz", "Öztürk", "Şahin", "Çelik", "Doğan", "Aydın", "Güneş")),
    "ja": (("Yūki", "Haruto", "Sakura", "Shōta", "Aiko", "Ren", "Kōji"),
           ("Satō", "Suzuki", "Takahashi", "Itō", "Watanabe", "Yamamoto", "Katō")),
    "hi": (("Aarav", "Priya", "Vihaan", "Ananya", "Rohan", "Diya", "Arjun"),
           ("Sharma", "Iyer", "Reddy", "Nair", "Gupta", "Menon", "Chatterjee")),
}  # fmt: skip

TIERS = (("Strategic", 10_000), ("Enterprise", 1000), ("Mid-Market", 200), ("SMB", 0))
ICP_INDUSTRIES = ("Software", "Fintech", "Financial Services", "Banking")
WEBSITES = ("https://www.{}/", "http://{}", "www.{}", "https://www.{}/en/about", "https://shop.{}/")
UNKNOWN_WORDS = ("quantum", "nimbus", "vertex", "orbit", "zenith", "helix", "lumen", "pixel")
USES = {"E": "enrichment", "D": "account_details", "G": "gtm", "A": "api"}
STAGES = {"Target": 30, "Awareness": 25, "Consideration": 20, "Decision": 13, "Purchase": 8, "": 4}
OWNERS = {
    "AMER": ("maria.lopez@example.com", "james.carter@example.com", "ana.souza@example.com"),
    "EMEA": ("julien.moreau@example.com", "jurgen.weiss@example.com", "oliver.hughes@example.com"),
    "APAC": ("yuki.sato@example.com", "priya.iyer@example.com"),
}


class SegmentSpec(NamedTuple):
    """A demo segment; a list segment's file has `share` of the accounts its `pool` selects."""

    name: str
    folder: str
    filter: str | None
    uses: str  # E enrichment, D account_details, G gtm (eligible segments only), A api
    source: str = "filter"
    list_file: str | None = None
    columns: str = ""  # the list file's columns, space-separated
    pool: str = ""  # a key of POOLS
    share: float = 0.0


# A segment a row: name | folder | uses | filter, "-" for none; a list segment's row goes on with
# source | list file | columns | pool | share. An indented line continues the row above. Long
# names happen: the ICP 2025 one fills most of a 255-character field, so values get truncated.
_SEGMENT_TABLE = """
ICP / Software & Fintech | ICP | EDA |
    industry in ("Software", "Fintech") and profile_fit in ("A", "B")
EMEA; Tier 1 | Regions | ED | region = "EMEA" and crm.tier in ("Strategic", "Enterprise")
Décideurs — France | Régions / France | E |
    country = "France" and buying_stage in ("Decision", "Purchase")
Enterprise AMER | Regions | EA | region = "AMER" and employee_count >= 1000
High intent (≥ 70) | Intent | E | intent_score >= 70
DACH — Mittelstand | Regions | ED |
    crm.territory = "DACH" and employee_count >= 100 and employee_count < 2000
Nordics: Sverige, Norge & Danmark | Regions | - | crm.territory = "Nordics"
APAC — Japan & ANZ | Regions | D | country in ("Japan", "Australia", "New Zealand")
Healthcare & Life Sciences | Industries | E |
    industry in ("Healthcare", "Pharmaceuticals", "Biotechnology")
Banking, Insurance & Financial Services | Industries | A |
    industry in ("Banking", "Insurance", "Financial Services")
Manufacturing / Industrie 4.0 | Industries | - |
    industry = "Manufacturing" and employee_count >= 250
Revenue ≥ $1B | Firmographics | ED | annual_revenue >= 1000000000
SMB (< 50 employees) | Firmographics | - | employee_count < 50
Unknown size | Data quality | - | employee_count is empty or annual_revenue is empty
Sociétés & Groupes — France | Régions / France | - |
    country = "France" and (name contains "Société" or name contains "Groupe")
Stage: Consideration → Decision | Intent | - | buying_stage in ("Consideration", "Decision")
Churn risk; low ARR | Customers | E | crm.arr < 20000 and crm.tier != "Strategic"
ARR ≥ 250k | Customers | D | crm.arr >= 250000
Owner: María López | Sales ops | - | crm.owner = "maria.lopez@example.com"
Türkiye & CEE | Regions | E | crm.territory in ("Türkiye & ME", "CEE")
Profile fit A | ICP | DA | profile_fit = "A"
Profile fit C/D — nurture | ICP | - | profile_fit in ("C", "D") or profile_fit is empty
Retail & Consumer (B2C) | Industries | - |
    industry in ("Retail", "Food & Beverage", "Consumer Goods")
Telco, Media & Tech | Industries | - | industry in ("Telecommunications", "Media", "Software")
Éducation & Formation | Industries | - | industry = "Education"
UK&I — .co.uk & .ie domains | Regions | - | domain contains ".co.uk" or country = "Ireland"
Energy — ‘Energiewende’ | Industries | - | industry = "Energy" and crm.territory = "DACH"
Logistics "last mile" | Industries | A | industry = "Logistics" and employee_count < 500
ICP 2025 — Software, Fintech & Financial Services in AMER/EMEA with 200 to 20,000 employees and
    profile fit A or B; refreshed nightly from the Salesforce report ‘ICP › Core › FY25’ (owner:
    RevOps, do not edit) | ICP | E |
    industry in ("Software", "Fintech", "Financial Services") and region in ("AMER", "EMEA") and
    employee_count >= 200 and employee_count <= 20000 and profile_fit in ("A", "B")
Automotive (OEM & Tier-1 suppliers) | Industries | - | industry = "Automotive"
Rest of world (not AMER/EMEA) | Regions | - | region not in ("AMER", "EMEA")
ABM 2025 — Named accounts | ABM | EGDA | - |
    uploaded_list | abm-2025-named-accounts.csv | domain | fit | 0.12
Trade show: Kraków 2024 / visitors | Marketing / Events | D | - |
    uploaded_list | krakow-2024-visitors.csv | website | emea | 0.04
Open pipeline (SFDC report) | Sales ops | EGA | - |
    crm_report_sync | open-pipeline.csv | external_id | pipeline | 0.35
Territory: DACH; Nordics | Territories | GD | - |
    crm_list_sync | territory-dach-nordics.csv | external_id domain | dach_nordics | 0.7
Customers — Renewals Q3 | Customers | - | - |
    crm_report_sync | renewals-q3.csv | external_id | customers | 0.3
Partner-sourced; EMEA | ABM | EG | region = "EMEA" |
    crm_list_sync | partner-sourced.csv | external_id | any | 0.12
Target list: Ōsaka & Tōkyō | ABM | G | profile_fit in ("A", "B", "C") |
    uploaded_list | osaka-tokyo-targets.csv | domain | japan | 0.8
Intent surge ∩ ABM list | Intent | E | intent_score >= 50 |
    uploaded_list | abm-intent-surge.csv | domain | fit | 0.12
Competitor displacement ‘Q4’ | Sales ops | A | buying_stage != "Purchase" |
    crm_report_sync | competitor-displacement-q4.csv | external_id | any | 0.05
ICP & Tier 1 — GTM 2025 | ICP | GD | crm.tier in ("Strategic", "Enterprise") |
    crm_list_sync | icp-tier-1.csv | external_id | fit | 0.5
"""


def _segment(name: str, folder: str, uses: str, condition: str, *listed: str) -> SegmentSpec:
    """One _SEGMENT_TABLE row as a SegmentSpec."""
    spec = SegmentSpec(
        name, folder, None if condition == "-" else condition, "" if uses == "-" else uses
    )
    if not listed:
        return spec
    source, list_file, columns, pool, share = listed
    return spec._replace(
        source=source, list_file=list_file, columns=columns, pool=pool, share=float(share)
    )


SEGMENTS = tuple(_segment(*row) for row in _rows(_SEGMENT_TABLE, "|"))

# SegmentSpec.pool -> which accounts (accounts CSV rows) a list segment's file picks from
POOLS: dict[str, Callable[[dict[str, str]], bool]] = {
    "fit": lambda row: row["profile_fit"] in ("A", "B"),
    "emea": lambda row: row["region"] == "EMEA",
    "pipeline": lambda row: row["buying_stage"] in ("Consideration", "Decision", "Purchase"),
    "dach_nordics": lambda row: row["crm.territory"] in ("DACH", "Nordics"),
    "customers": lambda row: row["crm.arr"][:1].isdigit(),
    "japan": lambda row: row["country"] == "Japan",
    "any": lambda row: True,
}

# Letters Unicode does not decompose into an ASCII base letter.
_ASCII = str.maketrans({"ß": "ss", "ø": "o", "æ": "ae", "ł": "l", "đ": "d", "œ": "oe", "ı": "i"})


def ascii_words(text: str) -> list[str]:
    """The lower-case ASCII words of `text` ("Müller & Söhne" -> ["muller", "sohne"])."""
    folded = unicodedata.normalize("NFKD", text.lower().translate(_ASCII))
    bare = (c for c in folded if not unicodedata.combining(c))
    plain = "".join(c if c.isascii() and c.isalnum() else " " for c in bare)
    return plain.split()
