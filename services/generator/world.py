"""The generator's world: stores, warehouses, suppliers, products, customers and devices.

Everything is drawn from one seeded ``random.Random``, so the same seed and sizes give the same world. The
world is pure data: building it does no I/O, and the reference records it yields are ready for Avro encoding.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

CENT = Decimal("0.01")
EPOCH = dt.date(1970, 1, 1)


@dataclass(frozen=True)
class City:
    name: str
    code: str
    postal_code: str


@dataclass(frozen=True)
class StoreSpec:
    store_id: str
    name: str
    currency: str
    timezone: str
    fx_per_eur: Decimal
    cities: tuple[City, ...]


# One shop front per country (store_id is the country code by convention).
STORES: tuple[StoreSpec, ...] = (
    StoreSpec(
        "DE",
        "Freightline Deutschland",
        "EUR",
        "Europe/Berlin",
        Decimal("1"),
        (City("Hamburg", "HAM", "20457"), City("Berlin", "BER", "10115"), City("Munich", "MUC", "80331")),
    ),
    StoreSpec(
        "FR",
        "Freightline France",
        "EUR",
        "Europe/Paris",
        Decimal("1"),
        (City("Paris", "PAR", "75011"), City("Lyon", "LYS", "69001"), City("Marseille", "MRS", "13001")),
    ),
    StoreSpec(
        "NL",
        "Freightline Nederland",
        "EUR",
        "Europe/Amsterdam",
        Decimal("1"),
        (City("Rotterdam", "RTM", "3011"), City("Amsterdam", "AMS", "1012")),
    ),
    StoreSpec(
        "GB",
        "Freightline UK",
        "GBP",
        "Europe/London",
        Decimal("0.86"),
        (City("London", "LON", "EC1A"), City("Manchester", "MAN", "M1")),
    ),
    StoreSpec(
        "PL",
        "Freightline Polska",
        "PLN",
        "Europe/Warsaw",
        Decimal("4.30"),
        (City("Warsaw", "WAW", "00-001"), City("Poznan", "POZ", "60-101")),
    ),
    StoreSpec(
        "SE",
        "Freightline Sverige",
        "SEK",
        "Europe/Stockholm",
        Decimal("11.40"),
        (City("Stockholm", "STO", "111 20"), City("Gothenburg", "GOT", "411 01")),
    ),
    StoreSpec(
        "ES",
        "Freightline Espana",
        "EUR",
        "Europe/Madrid",
        Decimal("1"),
        (City("Madrid", "MAD", "28001"), City("Valencia", "VLC", "46001")),
    ),
    StoreSpec(
        "US",
        "Freightline US",
        "USD",
        "America/New_York",
        Decimal("1.08"),
        (City("New York", "NYC", "10001"), City("Newark", "EWR", "07102")),
    ),
)

REGIONS = {"DE": "EU-Central", "FR": "EU-West", "NL": "EU-West", "GB": "UK", "PL": "EU-East", "SE": "Nordics"}
REGIONS |= {"ES": "EU-South", "US": "NA-East"}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "Electronics": ("Phones", "Laptops", "Audio", "Cameras"),
    "Home": ("Kitchen", "Furniture", "Lighting"),
    "Sports": ("Outdoor", "Fitness", "Cycling"),
    "Fashion": ("Shoes", "Outerwear", "Accessories"),
    "Books": ("Fiction", "Non-fiction"),
    "Toys": ("Games", "Puzzles"),
}
PRICE_RANGES = {
    "Electronics": (40, 1500),
    "Home": (10, 800),
    "Sports": (8, 600),
    "Fashion": (10, 300),
    "Books": (6, 45),
    "Toys": (5, 120),
}
BRANDS = ("Nordwind", "Alpina", "Kestrel", "Lumo", "Vantage", "Orbis", "Tessera", "Halcyon", "Brio", "Quill")
ADJECTIVES = ("Classic", "Pro", "Lite", "Max", "Eco", "Smart", "Compact", "Premium")
SEGMENTS = ("CONSUMER", "CONSUMER", "CONSUMER", "SMALL_BUSINESS", "CORPORATE")
SUPPLIER_NAMES = ("Logistik", "Components", "Trading", "Industries", "Manufacturing", "Wholesale", "Supply")
REFERRERS = (
    None,
    "https://www.google.com/",
    "https://www.bing.com/",
    "https://www.facebook.com/",
    "https://www.instagram.com/",
    "https://newsletter.freightline.example/",
    "https://compare.example.org/",
    "https://blog.example.net/reviews",
)

# The carrier companies; each route is served by CARRIERS_PER_ROUTE of them (``route_carriers``).
CARRIERS = ("NORDPOST", "RHEINFRACHT", "SWIFTLANE", "ATLAS_CARGO", "BLUEBIRD_COURIER")
CARRIERS_PER_ROUTE = 2


@dataclass(frozen=True)
class Store:
    spec: StoreSpec

    @property
    def store_id(self) -> str:
        return self.spec.store_id


@dataclass(frozen=True)
class Warehouse:
    warehouse_id: str
    name: str
    country: str
    city: City
    capacity_units: int


@dataclass(frozen=True)
class Supplier:
    supplier_id: str
    name: str
    country: str
    currency: str
    payment_terms_days: int


@dataclass
class Product:
    product_id: str
    name: str
    category: str
    subcategory: str
    brand: str
    price_eur: Decimal
    stock_quantity: int
    weight_kg: float
    temperature_sensitive: bool


@dataclass(frozen=True)
class Customer:
    customer_id: str
    segment: str
    country: str
    city: City
    signup_date: int  # days since the epoch


@dataclass(frozen=True)
class Device:
    device_id: str
    store_id: str
    remote_ip: str
    device_type: str


@dataclass(frozen=True)
class WorldSizes:
    products: int = 500
    customers: int = 2000
    suppliers: int = 40
    devices: int = 5000

    def __post_init__(self) -> None:
        for name in ("products", "customers", "suppliers", "devices"):
            if getattr(self, name) < 1:
                raise ValueError(f"world size {name} must be at least 1")


@dataclass
class World:
    stores: list[Store]
    warehouses: list[Warehouse]
    suppliers: list[Supplier]
    products: list[Product]
    customers: list[Customer]
    devices: list[Device]
    product_weights: list[float] = field(default_factory=list)  # cumulative popularity (Zipf-like)

    def store(self, store_id: str) -> StoreSpec:
        for store in self.stores:
            if store.store_id == store_id:
                return store.spec
        raise KeyError(store_id)

    def customers_in(self, country: str) -> list[Customer]:
        return [c for c in self.customers if c.country == country]


def build_world(rng: random.Random, sizes: WorldSizes | None = None) -> World:
    """A consistent world drawn from ``rng`` (same state and sizes, same world)."""
    sizes = sizes or WorldSizes()
    stores = [Store(spec) for spec in STORES]
    warehouses = []
    for spec in STORES:
        city = spec.cities[0]
        warehouses.append(
            Warehouse(
                warehouse_id=f"W-{city.code}-01",
                name=f"{city.name} Distribution Centre",
                country=spec.store_id,
                city=city,
                capacity_units=rng.randrange(5_000, 50_000, 500),
            )
        )
    suppliers = []
    for index in range(sizes.suppliers):
        spec = rng.choice(STORES)
        suppliers.append(
            Supplier(
                supplier_id=f"S-{index + 1:05d}",
                name=f"{rng.choice(BRANDS)} {rng.choice(SUPPLIER_NAMES)} {spec.store_id}",
                country=spec.store_id,
                currency=spec.currency,
                payment_terms_days=rng.choice((14, 30, 30, 45, 60)),
            )
        )
    products = []
    for index in range(sizes.products):
        category = rng.choice(tuple(CATEGORIES))
        subcategory = rng.choice(CATEGORIES[category])
        low, high = PRICE_RANGES[category]
        price = Decimal(str(round(rng.uniform(low, high), 2))).quantize(CENT)
        brand = rng.choice(BRANDS)
        products.append(
            Product(
                product_id=f"P-{index + 1:06d}",
                name=f"{brand} {subcategory} {rng.choice(ADJECTIVES)} {index + 1}",
                category=category,
                subcategory=subcategory,
                brand=brand,
                price_eur=price,
                stock_quantity=rng.randrange(0, 5_000),
                weight_kg=round(rng.uniform(0.2, 25.0), 2),
                temperature_sensitive=rng.random() < 0.05,
            )
        )
    customers = []
    signup_start = (dt.date(2019, 1, 1) - EPOCH).days
    for index in range(sizes.customers):
        spec = rng.choice(STORES)
        customers.append(
            Customer(
                customer_id=f"C-{index + 1:07d}",
                segment=rng.choice(SEGMENTS),
                country=spec.store_id,
                city=rng.choice(spec.cities),
                signup_date=signup_start + rng.randrange(0, 2_400),
            )
        )
    devices = []
    for index in range(sizes.devices):
        spec = rng.choice(STORES)
        devices.append(
            Device(
                device_id=f"D-{index + 1:08d}",
                store_id=spec.store_id,
                remote_ip=f"{rng.randrange(11, 223)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                device_type=rng.choice(("DESKTOP", "MOBILE", "MOBILE", "TABLET")),
            )
        )
    cumulative = []
    total = 0.0
    for rank in range(1, len(products) + 1):
        total += 1.0 / rank**0.9
        cumulative.append(total)
    return World(stores, warehouses, suppliers, products, customers, devices, cumulative)


def route_carriers(seed: int, route: str) -> tuple[str, ...]:
    """The carriers serving ``route`` in the world of ``seed``: ``CARRIERS_PER_ROUTE`` of ``CARRIERS``, drawn from
    the seed and the route alone (not from the run's generator, whose sequence of draws stays as it was)."""
    return tuple(random.Random(f"carriers/{seed}/{route}").sample(CARRIERS, CARRIERS_PER_ROUTE))


def local_price(product: Product, store: StoreSpec) -> Decimal:
    """The product's list price in the store's currency (fixed reference exchange rates)."""
    return (product.price_eur * store.fx_per_eur).quantize(CENT)


# -- reference records -------------------------------------------------------------------------------------


def store_record(store: Store, metadata: dict[str, Any]) -> dict[str, Any]:
    spec = store.spec
    return {
        "metadata": metadata,
        "store_id": spec.store_id,
        "name": spec.name,
        "country": spec.store_id,
        "currency": spec.currency,
        "timezone": spec.timezone,
    }


def warehouse_record(warehouse: Warehouse, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": metadata,
        "warehouse_id": warehouse.warehouse_id,
        "name": warehouse.name,
        "country": warehouse.country,
        "city": warehouse.city.name,
        "capacity_units": warehouse.capacity_units,
    }


def supplier_record(supplier: Supplier, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": metadata,
        "supplier_id": supplier.supplier_id,
        "name": supplier.name,
        "country": supplier.country,
        "currency": supplier.currency,
        "payment_terms_days": supplier.payment_terms_days,
    }


def product_record(product: Product, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": metadata,
        "product_id": product.product_id,
        "name": product.name,
        "category": product.category,
        "subcategory": product.subcategory,
        "brand": product.brand,
        "price": product.price_eur,
        "currency": "EUR",
        "stock_quantity": product.stock_quantity,
        "is_active": True,
    }


def customer_record(customer: Customer, metadata: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": metadata,
        "customer_id": customer.customer_id,
        "segment": customer.segment,
        "region": REGIONS[customer.country],
        "country": customer.country,
        "city": customer.city.name,
        "signup_date": customer.signup_date,
    }
