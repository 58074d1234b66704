interface CreatePetInput {
  pet: Cat | Dog;
  shape: CreatePetInputShapeCircle | CreatePetInputShapeSquare;
  size?: "S" | "M" | "L" | null;
  level?: 1 | 2 | 3;
  version?: 2;
  flags?: { strict: true; mode: "a-b" };
  ids?: (string | number)[];
  maybe_names?: (string | null)[];
  grid?: number[][];
  point?: [number, number];
  range?: [number, (number | null)?];
  row?: [string, ...number[]];
  legacy_pair?: [string, boolean];
  open_pair?: [string, boolean, ...unknown[]];
  labelled?: Labelled;
  owner?: Owner;
}

interface Cat extends Animal {
  kind: "cat";
  indoor?: boolean;
  /** @integer */
  age: number;
}

interface Animal {
  name: string;
  /** @integer */
  age?: number;
}

interface Dog extends Animal {
  kind: "dog";
  breed?: string;
}

interface CreatePetInputShapeCircle {
  kind: "circle";
  radius: number;
}

interface CreatePetInputShapeSquare {
  kind: "square";
  side: number;
}

interface Labelled extends Cat {
  label: string;
  checked: unknown;
  /** Other properties: string */
  [key: string]: unknown;
}

interface Owner {
  name?: string;
  phone?: string;
}

interface CreatePetOutput {
  /** @minLength 1 */
  id: string;
  /** @format date-time */
  createdAt?: string;
}

/** Register a pet */
declare function external_createPet(input: CreatePetInput): Promise<CreatePetOutput>;

interface TagStatsInput {
  labels?: Record<string, string>;
  meta?: TagStatsInputMeta;
  headers?: Record<string, string>;
  weights?: Partial<Record<"low" | "high", number>>;
  loose?: TagStatsInputLoose;
  /** @minLength 4 */
  id?: Id;
  branded?: Id & Tagged;
  items_or_count?: Id[] | number;
  entries?: (Id | TagStatsInputEntriesItemVariant2)[];
  mixed?: Tagged & (TagStatsInputMixedVariant1 | TagStatsInputMixedVariant2);
  named_tags?: (Tagged & Named)[];
  counted_tags?: TagStatsInputCountedTagsItem[];
}

interface TagStatsInputMeta {
  source: string;
  /** @integer */
  count?: number;
  /** Other properties: string */
  [key: string]: string | number | undefined;
}

interface TagStatsInputLoose {
  a?: string;
  [key: string]: unknown;
}

/** @pattern ^[A-Z]+$ */
type Id = string;

interface Tagged {
  tag: string;
}

interface TagStatsInputEntriesItemVariant2 {
  ref: string;
}

interface TagStatsInputMixedVariant1 {
  a: string;
}

interface TagStatsInputMixedVariant2 {
  b: number;
}

interface Named {
  name: string;
}

interface TagStatsInputCountedTagsItem extends Tagged {
  n: number;
}

type TagStatsOutput = Record<string, TagStatsOutputValue>;

interface TagStatsOutputValue {
  /** @integer */
  count: number;
  owner?: TagStatsOutputValueOwner;
}

interface TagStatsOutputValueOwner {
  email?: string;
}

/** Counts per tag */
declare function external_tag_stats(input?: TagStatsInput): Promise<TagStatsOutput>;
