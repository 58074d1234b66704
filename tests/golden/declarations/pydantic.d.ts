/** An order to place. */
interface PlaceOrderInput {
  /** Order id @integer @minimum 1 */
  id: number;
  /** @default "pending" */
  status?: "pending" | "shipped";
  color: Color;
  /** @default 1 */
  priority?: Priority;
  /** @maxLength 200 @default null */
  note?: string | null;
  tags?: string[];
  /** @default {} */
  counts?: Record<string, number>;
  /** @format date-time */
  placed_at: string;
  pair: [number, string];
  shipping: Address;
  /** @default null */
  billing?: Address | null;
  category: Category;
  pet: Cat | Dog;
  /** @default {} */
  by_color?: Partial<Record<Color, number>>;
  /** @integer @default null @deprecated */
  legacy?: number | null;
  /** @default 0.5 @example 0.1 @example 0.9 */
  score?: number;
}

type Color = "red" | "green";

type Priority = 1 | 2;

/** A postal address. */
interface Address {
  street: string;
  /** City name @minLength 1 */
  city: string;
  /** @default null */
  zip_code?: string | null;
}

interface Category {
  name: string;
  /** @default [] */
  children?: Category[];
}

interface Cat {
  kind: "cat";
  /** @integer @default 9 */
  lives?: number;
}

interface Dog {
  kind: "dog";
  /** @default true */
  good?: boolean;
}

type PlaceOrderOutput = Category;

/** Place an order */
declare function external_place_order(input: PlaceOrderInput): Promise<PlaceOrderOutput>;
