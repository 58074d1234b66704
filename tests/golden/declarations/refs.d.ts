interface GetCatalogInput {
  /** Start here */
  root: Category;
  since?: DateType;
  billing?: GetCatalogInputBilling;
  shipping?: Billing;
}

/** A node of the category tree */
interface Category {
  id: string;
  children?: Category[];
}

/** An ISO date @format date */
type DateType = string;

interface GetCatalogInputBilling {
  street: string;
  city?: string;
}

interface Billing {
  street: string;
  city?: string;
}

interface GetCatalogOutput {
  products: Product[];
  parent?: GetCatalogOutput;
  extra?: unknown;
  records?: RecordType[];
}

interface Product {
  sku: string;
  tags: Tag[];
}

type Tag = "new" | "sale";

interface RecordType {
  at: string;
}

/** The catalog tree */
declare function external_get_catalog(input: GetCatalogInput): Promise<GetCatalogOutput>;

interface GetProductInput {
  sku: string;
  tag?: Tag2;
}

interface Tag2 {
  label: string;
}

type GetProductOutput = Product;

/** One product, with its tag in another vocabulary */
declare function external_getProduct(input: GetProductInput): Promise<GetProductOutput>;

interface RelatedProductsInput {
  sku: string;
}

interface RelatedProductsOutput {
  items: Product2[];
  summary?: ProductSummary;
  page?: PageItem;
  slash?: AB;
}

interface Product2 {
  sku: string;
  tags: Tag3[];
}

type Tag3 = "old" | "clearance";

type ProductSummary = string;

interface PageItem {
  next: string | null;
}

type AB = boolean;

/**
 * Products whose tags differ (same def name, different shape); def keys that are not identifiers
 */
declare function external_relatedProducts(input: RelatedProductsInput): Promise<RelatedProductsOutput>;
