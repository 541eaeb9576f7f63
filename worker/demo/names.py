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


def _country(
    name: str, region: str, territory: str, weight: int,
    suffixes: str, forms: str, language: str, stems: str,
) -> Country:  # fmt: skip
    """One COUNTRIES row: suffixes split on spaces, legal forms and stems on |."""
    return Country(
        name, region, territory, weight, tuple(suffixes.split()), tuple(forms.split("|")),
        language, tuple(stems.split("|")),
    )  # fmt: skip


COUNTRIES = (
    _country("United States", "AMER", "NA", 24, "com io us", "Inc.|LLC|Corp.|Co.", "en",
             "Harper & Quinn|Baker, Lowe & Partners|Blue Ridge|Summit|Redwood|Lakeshore|Ironclad|"
             "Northwind|Cascade|Granite State|Silverline|Brightpath|O'Malley|Keystone|Prairie|"
             "Hudson Valley|Crescent|Liberty Bell|Pioneer|Sierra|Atlas|Bayview|Evergreen|"
             "Maple & Main|Copperfield|Sunbelt|Great Lakes|Magnolia|Lone Star|Big Sky"),
    _country("Canada", "AMER", "NA", 3, "ca com", "Ltd.|Inc.", "en",
             "Maple Leaf|Laurentian|Québec Nord|Montréal Bay|Okanagan|Fraser|Algonquin|Yukon"),
    _country("Brazil", "AMER", "LATAM", 3, "com.br", "Ltda.|S.A.", "pt",
             "São Paulo|Paraná|Açaí do Norte|Ipanema|Florianópolis|Goiânia|Amazônia|Belém"),
    _country("Mexico", "AMER", "LATAM", 2, "com.mx", "S.A. de C.V.", "es",
             "Querétaro|Monterrey|Mérida|Oaxaca|Yucatán|Sonora|Tulum"),
    _country("United Kingdom", "EMEA", "UK&I", 9, "co.uk com", "Ltd|plc|LLP", "en",
             "Thames|Pennine|Whitcombe & Sons|Cotswold|Harrow|Albion|Sterling|Kensington|"
             "Fenwick|Ashdown|Brompton|Mersey|Highland|Caledonian|Wessex|St. Ives"),
    _country("Ireland", "EMEA", "UK&I", 2, "ie", "Ltd|DAC", "en",
             "Liffey|Shannon|O'Brien & Daughters|Connacht|Wicklow|Galway Bay"),
    _country("France", "EMEA", "France", 8, "fr com", "SA|SAS|SARL", "fr",
             "Société Lefèvre|Lefèvre & Fils|Éditions Mercier|Groupe Dubois|Besançon|Orléans|"
             'Café "Le Zinc"|Côte d\'Azur|Nîmes|Générale d\'Équipement|Beaumont|Château-Thierry|'
             "Société Bretonne|Garnier-Roussel|Île-de-France"),
    _country("Germany", "EMEA", "DACH", 9, "de com", "GmbH|AG|GmbH & Co. KG|SE", "de",
             "Müller & Söhne|Weißbach|Schäfer + Partner|Grünwald|Rheinland|Nordstern|Köln|"
             "Düsseldorfer|Bergmann|Löwenthal|Schwarzwald|Brückner|Fränkische|Hansa|Münchner"),
    _country("Austria", "EMEA", "DACH", 2, "at", "GmbH|AG", "de",
             "Wiener|Tiroler|Kärntner|Grazer|Salzach|Wörthersee"),
    _country("Switzerland", "EMEA", "DACH", 3, "ch", "AG|SA|GmbH", "de",
             "Zürcher|Genève|Bern|Matterhorn|Luzerner|Thurgau|Basler|Engadin"),
    _country("Spain", "EMEA", "Southern Europe", 4, "es", "S.L.|S.A.", "es",
             "Construcciones Málaga|Señorío de Córdoba|Peñalara|Cádiz|Logroño|Navarra|Alcalá|"
             "Ibérica|Asturias"),
    _country("Italy", "EMEA", "Southern Europe", 4, "it", "S.p.A.|S.r.l.", "it",
             "Fratelli Rossi|Officine Città|Caffè Società|Torino|Perugia|Brescia|Lucca|Ferrara|"
             "Sant'Elia"),
    _country("Netherlands", "EMEA", "Benelux", 4, "nl", "B.V.|N.V.", "nl",
             "Van der Berg & Zn.|De Vries|Zuiderzee|Oranje|Delftse|Hollandse|IJssel|Utrechtse"),
    _country("Sweden", "EMEA", "Nordics", 3, "se", "AB", "nordic",
             "Malmö Mekaniska|Göteborgs|Norrland|Västerås|Öresund|Skåne|Älvsborg"),
    _country("Norway", "EMEA", "Nordics", 2, "no", "AS|ASA", "nordic",
             "Tromsø|Ålesund Marine|Bergens|Fjordkraft|Nordlys|Lofoten"),
    _country("Denmark", "EMEA", "Nordics", 2, "dk", "A/S|ApS", "nordic",
             "Århus|Jysk Ø|Københavns|Fyns|Øresundsbro|Skagen"),
    _country("Poland", "EMEA", "CEE", 3, "pl com.pl", "Sp. z o.o.|S.A.", "pl",
             "Kraków|Łódź|Gdańsk|Wrocławskie|Poznań|Żywiec|Śląsk|Mazowsze"),
    _country("Türkiye", "EMEA", "Türkiye & ME", 2, "com.tr", "A.Ş.|Ltd. Şti.", "tr",
             "İstanbul|Anadolu|Ege|Çukurova|İzmir|Boğaziçi|Karadeniz"),
    _country("Japan", "APAC", "Japan", 5, "co.jp jp", "K.K.|Co., Ltd.", "ja",
             "Ōsaka Seimitsu|Tōkyō|Kōbe Shōji|Tōhoku|Kyūshū|Hokkaidō|Nagoya|Sapporo|Yokohama|"
             "Chūbu"),
    _country("Australia", "APAC", "ANZ", 4, "com.au", "Pty Ltd", "en",
             "Southern Cross|Coral Coast|Kookaburra|Murray River|Outback|Tasman|Bondi|Kimberley"),
    _country("New Zealand", "APAC", "ANZ", 1, "co.nz", "Limited", "en",
             "Tāmaki|Aoraki|Kiwi Coast|Waikato|Ōtautahi|Rotorua"),
    _country("Singapore", "APAC", "SEA", 2, "com.sg sg", "Pte. Ltd.", "en",
             "Lion City|Merlion|Straits|Jurong|Sentosa|Tanjong Pagar"),
    _country("India", "APAC", "South Asia", 3, "co.in in", "Pvt. Ltd.|Ltd.", "hi",
             "Sahyadri|Shree Ganesh|Bharat|Kaveri|Deccan|Himalaya|Narmada|Konkan"),
)  # fmt: skip

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


SEGMENTS = (
    SegmentSpec("ICP / Software & Fintech", "ICP",
                'industry in ("Software", "Fintech") and profile_fit in ("A", "B")', "EDA"),
    SegmentSpec("EMEA; Tier 1", "Regions",
                'region = "EMEA" and crm.tier in ("Strategic", "Enterprise")', "ED"),
    SegmentSpec("Décideurs — France", "Régions / France",
                'country = "France" and buying_stage in ("Decision", "Purchase")', "E"),
    SegmentSpec("Enterprise AMER", "Regions", 'region = "AMER" and employee_count >= 1000', "EA"),
    SegmentSpec("High intent (≥ 70)", "Intent", "intent_score >= 70", "E"),
    SegmentSpec("DACH — Mittelstand", "Regions",
                'crm.territory = "DACH" and employee_count >= 100 and employee_count < 2000', "ED"),
    SegmentSpec("Nordics: Sverige, Norge & Danmark", "Regions", 'crm.territory = "Nordics"', ""),
    SegmentSpec("APAC — Japan & ANZ", "Regions",
                'country in ("Japan", "Australia", "New Zealand")', "D"),
    SegmentSpec("Healthcare & Life Sciences", "Industries",
                'industry in ("Healthcare", "Pharmaceuticals", "Biotechnology")', "E"),
    SegmentSpec("Banking, Insurance & Financial Services", "Industries",
                'industry in ("Banking", "Insurance", "Financial Services")', "A"),
    SegmentSpec("Manufacturing / Industrie 4.0", "Industries",
                'industry = "Manufacturing" and employee_count >= 250', ""),
    SegmentSpec("Revenue ≥ $1B", "Firmographics", "annual_revenue >= 1000000000", "ED"),
    SegmentSpec("SMB (< 50 employees)", "Firmographics", "employee_count < 50", ""),
    SegmentSpec("Unknown size", "Data quality",
                "employee_count is empty or annual_revenue is empty", ""),
    SegmentSpec("Sociétés & Groupes — France", "Régions / France",
                'country = "France" and (name contains "Société" or name contains "Groupe")', ""),
    SegmentSpec("Stage: Consideration → Decision", "Intent",
                'buying_stage in ("Consideration", "Decision")', ""),
    SegmentSpec("Churn risk; low ARR", "Customers",
                'crm.arr < 20000 and crm.tier != "Strategic"', "E"),
    SegmentSpec("ARR ≥ 250k", "Customers", "crm.arr >= 250000", "D"),
    SegmentSpec("Owner: María López", "Sales ops", 'crm.owner = "maria.lopez@example.com"', ""),
    SegmentSpec("Türkiye & CEE", "Regions", 'crm.territory in ("Türkiye & ME", "CEE")', "E"),
    SegmentSpec("Profile fit A", "ICP", 'profile_fit = "A"', "DA"),
    SegmentSpec("Profile fit C/D — nurture", "ICP",
                'profile_fit in ("C", "D") or profile_fit is empty', ""),
    SegmentSpec("Retail & Consumer (B2C)", "Industries",
                'industry in ("Retail", "Food & Beverage", "Consumer Goods")', ""),
    SegmentSpec("Telco, Media & Tech", "Industries",
                'industry in ("Telecommunications", "Media", "Software")', ""),
    SegmentSpec("Éducation & Formation", "Industries", 'industry = "Education"', ""),
    SegmentSpec("UK&I — .co.uk & .ie domains", "Regions",
                'domain contains ".co.uk" or country = "Ireland"', ""),
    SegmentSpec("Energy — ‘Energiewende’", "Industries",
                'industry = "Energy" and crm.territory = "DACH"', ""),
    SegmentSpec('Logistics "last mile"', "Industries",
                'industry = "Logistics" and employee_count < 500', "A"),
    # Long names happen: this one fills most of a 255-character field, so values get truncated.
    SegmentSpec("ICP 2025 — Software, Fintech & Financial Services in AMER/EMEA with 200 to 20,000 "
                "employees and profile fit A or B; refreshed nightly from the Salesforce report "
                "‘ICP › Core › FY25’ (owner: RevOps, do not edit)", "ICP",
                'industry in ("Software", "Fintech", "Financial Services") and region in ("AMER", '
                '"EMEA") and employee_count >= 200 and employee_count <= 20000 and profile_fit in '
                '("A", "B")', "E"),
    SegmentSpec("Automotive (OEM & Tier-1 suppliers)", "Industries", 'industry = "Automotive"', ""),
    SegmentSpec("Rest of world (not AMER/EMEA)", "Regions", 'region not in ("AMER", "EMEA")', ""),
    SegmentSpec("ABM 2025 — Named accounts", "ABM", None, "EGDA", "uploaded_list",
                "abm-2025-named-accounts.csv", "domain", "fit", 0.12),
    SegmentSpec("Trade show: Kraków 2024 / visitors", "Marketing / Events", None, "D",
                "uploaded_list", "krakow-2024-visitors.csv", "website", "emea", 0.04),
    SegmentSpec("Open pipeline (SFDC report)", "Sales ops", None, "EGA", "crm_report_sync",
                "open-pipeline.csv", "external_id", "pipeline", 0.35),
    SegmentSpec("Territory: DACH; Nordics", "Territories", None, "GD", "crm_list_sync",
                "territory-dach-nordics.csv", "external_id domain", "dach_nordics", 0.7),
    SegmentSpec("Customers — Renewals Q3", "Customers", None, "", "crm_report_sync",
                "renewals-q3.csv", "external_id", "customers", 0.3),
    SegmentSpec("Partner-sourced; EMEA", "ABM", 'region = "EMEA"', "EG", "crm_list_sync",
                "partner-sourced.csv", "external_id", "any", 0.12),
    SegmentSpec("Target list: Ōsaka & Tōkyō", "ABM", 'profile_fit in ("A", "B", "C")', "G",
                "uploaded_list", "osaka-tokyo-targets.csv", "domain", "japan", 0.8),
    SegmentSpec("Intent surge ∩ ABM list", "Intent", "intent_score >= 50", "E", "uploaded_list",
                "abm-intent-surge.csv", "domain", "fit", 0.12),
    SegmentSpec("Competitor displacement ‘Q4’", "Sales ops", 'buying_stage != "Purchase"', "A",
                "crm_report_sync", "competitor-displacement-q4.csv", "external_id", "any", 0.05),
    SegmentSpec("ICP & Tier 1 — GTM 2025", "ICP", 'crm.tier in ("Strategic", "Enterprise")', "GD",
                "crm_list_sync", "icp-tier-1.csv", "external_id", "fit", 0.5),
)  # fmt: skip

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
