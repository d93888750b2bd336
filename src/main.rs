#[tokio::main]
async fn main() -> anyhow::Result<()> {
    sales_block::cli::run().await
}
