// Which products sell best, and how do customers rate them?
interface Product { id: string; name: string; totalSales: number; price: number }

const top = await external_getTopProducts({ limit: 5 })
console.log(`ranking ${top.products.length} products`)

const ratings = await Promise.all(
  top.products.map((p: Product) => external_getProductRatings({ productId: p.id })),
)

return top.products.map((product: Product, i: number) => {
  const scores = ratings[i].ratings.map((r: { score: number }) => r.score)
  const avg = scores.reduce((sum: number, s: number) => sum + s, 0) / scores.length
  return { name: product.name, sales: product.totalSales, averageRating: Math.round(avg * 100) / 100 }
})
