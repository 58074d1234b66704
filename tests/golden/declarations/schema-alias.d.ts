/** A binary tree, or null when empty */
type TreeNode = {
  value: number;
  left?: TreeNode;
  right?: TreeNode;
} | null;
