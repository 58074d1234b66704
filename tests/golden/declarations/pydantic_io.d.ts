interface GetCustomerInput {
  query: Query;
}

/** Which customer, and how many orders. */
interface Query {
  id: string;
  /** @integer @default 10 */
  limit?: number;
  /** @default null */
  sinceDate?: string | null;
}

/** What get_customer returns: every field the dump writes is there. */
interface GetCustomerOutput {
  id: string;
  fullName: string;
  /** @default [] */
  tags: string[];
  /** @default null */
  note: string | null;
  display: string;
}

/** Look a customer up. */
declare function external_get_customer(input: GetCustomerInput): Promise<GetCustomerOutput>;
