interface GetTopProductsInput {
  /** How many products to return @integer @minimum 1 @maximum 50 */
  limit: number;
}

interface GetTopProductsOutput {
  products: GetTopProductsOutputProductsItem[];
}

interface GetTopProductsOutputProductsItem {
  id: string;
  name: string;
  totalSales: number;
  price: number;
}

/** Get the best-selling products, ordered by total sales (highest first) */
declare function external_getTopProducts(input: GetTopProductsInput): Promise<GetTopProductsOutput>;

interface GetProductRatingsInput {
  /** Product id, e.g. "p-101" */
  productId: string;
}

interface GetProductRatingsOutput {
  productId: string;
  ratings: GetProductRatingsOutputRatingsItem[];
}

interface GetProductRatingsOutputRatingsItem {
  userId: string;
  /** @integer @minimum 1 @maximum 5 */
  score: number;
}

/** Get all customer ratings (1-5 stars) for one product */
declare function external_getProductRatings(input: GetProductRatingsInput): Promise<GetProductRatingsOutput>;

interface EchoInput {
  i: number;
}

interface EchoOutput {
  i: number;
}

/** Return the input unchanged (used to measure tool-call overhead) */
declare function external_echo(input: EchoInput): Promise<EchoOutput>;

type GetAllOrdersInput = Record<string, never>;

type GetAllOrdersOutput = GetAllOrdersOutputItem[];

interface GetAllOrdersOutputItem {
  id: number;
  customer: string;
  sku: string;
  quantity: number;
  status: "pending" | "shipped" | "delivered" | "returned";
}

/** Return every order in the store (large: about 1 MB of JSON) */
declare function external_getAllOrders(input?: GetAllOrdersInput): Promise<GetAllOrdersOutput>;

interface SleepInput {
  ms: number;
}

interface SleepOutput {
  sleptMs: number;
}

/** Wait for the given number of milliseconds, then return */
declare function external_sleep(input: SleepInput): Promise<SleepOutput>;
